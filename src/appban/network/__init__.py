"""Network logs: read DNS, TLS SNI, HTTP and flow logs into one Arrow record schema for screening.

`records` holds the schema, the reader interface, format detection and the streaming machinery;
`readers` holds one module per log format.
"""
