/** Where in the input a problem was found: 1-based record number and the record's id. */
export interface RecordLocation {
  number: number;
  id: string;
}

/**
 * A problem with the user's read file. The message always names the file and, when the
 * problem belongs to one record, that record's number and id, so a user can find it.
 */
export class ReadInputError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
    readonly record?: RecordLocation,
  ) {
    super(record ? `${file}: record ${record.number} (${record.id || 'no id'}): ${problem}` : `${file}: ${problem}`);
    this.name = 'ReadInputError';
  }
}
