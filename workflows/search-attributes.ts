// The run's search attributes: what the Temporal Web UI's workflow list can show as columns and
// filter on (e.g. `VirnucproSample = "S01" AND VirnucproState = "running"`). The embedded dev
// server registers them at start (cli/temporal-server.ts); on a cluster its operator does
// (`temporal operator search-attribute create`), and a run started where they are missing simply
// does without them. "Frames" are the gpu steps' units: the rows of their shards.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const RUN_SEARCH_ATTRIBUTES = {
  sample: defineSearchAttributeKey('VirnucproSample', SearchAttributeType.KEYWORD),
  input: defineSearchAttributeKey('VirnucproInput', SearchAttributeType.KEYWORD),
  state: defineSearchAttributeKey('VirnucproState', SearchAttributeType.KEYWORD),
  framesDone: defineSearchAttributeKey('VirnucproFramesDone', SearchAttributeType.INT),
  framesTotal: defineSearchAttributeKey('VirnucproFramesTotal', SearchAttributeType.INT),
} as const;

/** `temporal server start-dev --search-attribute NAME=TYPE` spells the types so. */
const CLI_TYPE_NAMES: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

export function searchAttributeArgs(): string[] {
  return Object.values(RUN_SEARCH_ATTRIBUTES).flatMap((key) => ['--search-attribute', `${key.name}=${CLI_TYPE_NAMES[key.type]}`]);
}
