"""Structure-aware fuzzing of every reader, the code scanner, the CLI and the service (see FUZZING.md)."""
