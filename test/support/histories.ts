// Recorded workflow histories as JSON files. The SDK's historyToJSON/historyFromJSON fail in this
// dependency tree (two protobufjs copies), so the files hold protobufjs's own object form of the
// History message (enums, longs and bytes as strings), which round-trips exactly.
import { temporal } from '@temporalio/proto';
import type { History } from '@temporalio/common/lib/proto-utils';

const HistoryMessage = temporal.api.history.v1.History;

export interface HistoryFile {
  format: 'temporal.api.history.v1.History/protobufjs-object';
  workflowId: string;
  history: Record<string, unknown>;
}

export function toHistoryFile(workflowId: string, history: History): HistoryFile {
  const message = HistoryMessage.fromObject(history as Record<string, unknown>);
  return {
    format: 'temporal.api.history.v1.History/protobufjs-object',
    workflowId,
    history: HistoryMessage.toObject(message, { longs: String, enums: String, bytes: String }),
  };
}

export function fromHistoryFile(file: HistoryFile): { workflowId: string; history: History } {
  if (file.format !== 'temporal.api.history.v1.History/protobufjs-object') throw new Error(`unknown history file format ${String(file.format)}`);
  return { workflowId: file.workflowId, history: HistoryMessage.fromObject(file.history) };
}
