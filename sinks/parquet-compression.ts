/** The codecs parquet-sink offers; shared by the sink and its writer thread, which loads nothing else of the sink. */
export const COMPRESSIONS = ['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'BROTLI', 'ZSTD'] as const;
export type CompressionName = (typeof COMPRESSIONS)[number];
