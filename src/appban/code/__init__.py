"""Readers for compiled app code (DEX, Mach-O, static libraries, binary manifests, signatures)."""
