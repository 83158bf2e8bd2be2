// Read preparation: reading, chunking, six-frame translation, frame shards.
export { readSequences, readSequencesFrom, type SequenceRecord, type SequenceFormat } from './sequence-reader';
export { detectCompression, decompress, type Compression } from './decompress';
export { ReadInputError } from './errors';
export { chunkSpans, chunkName, type ChunkSpan } from './chunking';
export { SixFrameTranslator, type KeptFrame, type FrameName } from './translation';
export { prepareChunks, emptyStats, type PreparedChunk, type ReadRecord, type PrepareStats } from './prepared-reads';
export { FRAMES_FORMAT, RECORDS_FORMAT, TABLE_VERSION, framesSchema, recordsSchema } from './arrow-tables';
export { OriginalFilesWriter, originalFilePaths, originalStem } from './original-files';
export { translateFile, type TranslateResult } from './translate-files';
export {
  prepareReads,
  prepareReadsInput,
  prepareReadsOutput,
  shardFileName,
  DEFAULT_SHARD_FRAMES,
  type PrepareReadsInput,
  type PrepareReadsOutput,
  type PrepareProgress,
  type PrepareHooks,
} from './prepare-activity';
export { prepareImplementation, prepareParams } from './implementation';
