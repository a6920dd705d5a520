"""Payments: readers for payment files, the markers of covered payment services, and their matcher."""
