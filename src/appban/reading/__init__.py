"""Reading files for every screener: streams, chunks of whole lines, delimited and JSON text, Parquet, and
turning text into typed Arrow columns.

Every reader streams: the decompressed input is cut into chunks of whole lines (`chunks.iter_line_chunks`),
each chunk is parsed with Arrow's vectorised CSV, JSON and regex kernels (`parse`), values become typed
columns (`values`), and the rows are regrouped into record batches of at most `batch_rows` rows
(`batches.rebatch`). Memory therefore stays at a few chunks and one batch whatever the size of the file. A
line that cannot be read is counted in `stats.ReadStats` with its line number and dropped; it never stops
the read. `columnar` reads any CSV, JSON-lines or Parquet export column by column for readers that take a
column map. Nothing here knows what a record means: each screener declares its own schema.
"""
