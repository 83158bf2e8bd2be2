/**
 * Makes record ids unique, deterministically. The original passes duplicate ids through
 * and fair-esm then fails on them; we keep the first occurrence as it is and rename each
 * later one to `{id}_2`, `{id}_3`, ... (the first suffix not already in use, counting ids
 * seen earlier in the file), so reruns on the same input give the same names.
 * Memory: one Set entry per record (a string of the id's length plus ~50 bytes).
 */
export class UniqueIds {
  private readonly used = new Set<string>();
  private readonly nextSuffix = new Map<string, number>();

  /** The id to use for a record whose header gives `id`. */
  assign(id: string): string {
    if (!this.used.has(id)) {
      this.used.add(id);
      return id;
    }
    let suffix = this.nextSuffix.get(id) ?? 2;
    while (this.used.has(`${id}_${suffix}`)) suffix++;
    const unique = `${id}_${suffix}`;
    this.nextSuffix.set(id, suffix + 1);
    this.used.add(unique);
    return unique;
  }
}
