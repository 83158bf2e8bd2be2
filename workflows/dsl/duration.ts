// Durations in pipeline definitions: milliseconds, or a number with a unit ("500ms", "30s", "10m", "2h").
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(value: number | string): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/.exec(value.trim());
  if (!match) throw new Error(`"${value}" is not a duration (examples: 500ms, 30s, 10m, 2h)`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2]]);
}
