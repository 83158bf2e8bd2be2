/**
 * `str()` of a numpy float32, in TypeScript.
 *
 * The original VirNucPro writes its scores with `'\t'.join(map(str, probability))`, where
 * `probability` is a row of a float32 numpy array, so every score is printed the way numpy
 * prints a float32 scalar: the shortest decimal string that reads back as the same float32
 * (Dragon4 "unique" mode), positional for 1e-4 <= |x| < 1e6 and scientific otherwise
 * (`1e-05`, `5.9604645e-08`, `1e+06`). Matching it digit for digit keeps our
 * `prediction_results.txt` byte-identical to the original's for equal scores.
 * The thresholds were measured against numpy 2.4 (see test/outputs/fixtures).
 */

const POSITIONAL_MIN = 1e-4;
const POSITIONAL_MAX = 1e6;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The shortest round-trip decimal digits of a finite, non-zero float32 and its exponent:
 * value ~= 0.d1d2d3... x 10^(exponent+1), i.e. `exponent` is that of the first digit. */
interface ShortestDigits {
  digits: string;
  exponent: number;
}

function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

/**
 * Exact rational arithmetic: the value is m * 2^e. The float32 rounding interval is
 * (low, high) around it, half an ulp each side (a quarter below at an exact power of two,
 * where the ulp below is half as wide); its ends belong to it when the mantissa is even,
 * because a decimal on a boundary reads back to the even neighbour. Among decimals with the
 * fewest significant digits inside that interval, take the one nearest the value (ties to an even last digit),
 * which is what Dragon4's unique mode produces.
 */
function shortestDigits(bits: number): ShortestDigits {
  const expField = (bits >>> 23) & 0xff;
  const fraction = bits & 0x7fffff;
  const m = BigInt(expField === 0 ? fraction : fraction | 0x800000);
  const e = (expField === 0 ? 1 : expField) - 150;
  const unequalMargins = expField > 1 && fraction === 0;
  // a decimal exactly on a boundary reads back (ties to even) as this value iff m is even
  const evenMantissa = m % 2n === 0n;

  // Everything is scaled by 2^(2 - e) (or 2^-(e-2) numerators) so that the value and both
  // interval ends are integers: value = v / den, low = lo / den, high = hi / den.
  let v = m * 4n;
  let lo = unequalMargins ? m * 4n - 1n : m * 4n - 2n;
  let hi = m * 4n + 2n;
  let den = 1n;
  const shift = e - 2;
  if (shift >= 0) {
    const s = 1n << BigInt(shift);
    v *= s;
    lo *= s;
    hi *= s;
  } else {
    den = 1n << BigInt(-shift);
  }

  // exponent k of the leading decimal digit: 10^k <= value < 10^(k+1)
  let k = Math.floor(Math.log10(Number(v) / Number(den)));
  const atLeast = (kk: number) => (kk >= 0 ? v >= den * pow10(kk) : v * pow10(-kk) >= den);
  if (!atLeast(k)) k -= 1;
  else if (atLeast(k + 1)) k += 1;

  for (let precision = 1; precision <= 17; precision++) {
    // candidates are D * 10^scale with D an integer of `precision` digits
    const scale = k - precision + 1;
    // value / 10^scale = num / dnm
    const num = scale >= 0 ? v : v * pow10(-scale);
    const dnm = scale >= 0 ? den * pow10(scale) : den;
    const floorD = num / dnm;
    // compare d * 10^scale with lo/den and hi/den, both sides multiplied by den (and by
    // 10^-scale when scale is negative) to stay in integers
    const loScaled = scale >= 0 ? lo : lo * pow10(-scale);
    const hiScaled = scale >= 0 ? hi : hi * pow10(-scale);
    const inside = (d: bigint) => {
      const c = scale >= 0 ? d * pow10(scale) * den : d * den;
      return evenMantissa ? c >= loScaled && c <= hiScaled : c > loScaled && c < hiScaled;
    };
    const down = inside(floorD);
    const up = inside(floorD + 1n);
    if (!down && !up) continue;
    let chosen: bigint;
    if (down && up) {
      const twiceRemainder = 2n * (num - floorD * dnm);
      if (twiceRemainder < dnm) chosen = floorD;
      else if (twiceRemainder > dnm) chosen = floorD + 1n;
      else chosen = floorD % 2n === 0n ? floorD : floorD + 1n;
    } else {
      chosen = down ? floorD : floorD + 1n;
    }
    let digits = chosen.toString();
    let exponent = k;
    if (digits.length > precision) exponent += 1; // 99.9.. rounded up to 100..
    digits = digits.replace(/0+$/, '');
    return { digits: digits === '' ? '0' : digits, exponent };
  }
  throw new Error(`no round-trip decimal found for float32 bits 0x${bits.toString(16)}`);
}

/**
 * The same digits without BigInt, for the common case. Where the rounding interval is symmetric
 * (the mantissa is not an exact power of two), the nearest p-digit decimal, which `toPrecision`
 * gives, is inside the interval whenever any p-digit decimal is, so the first p at which it reads
 * back is the shortest. Reading back through a double is exact at the interval's ends (they are
 * float32 midpoints, exact in a double), where ties-to-even decides as the exact path does.
 * Returns null where the exact path must decide (unequal margins, or a p-digit tie, where
 * `toPrecision` rounds up and Dragon4 to even).
 */
function fastShortestDigits(value: number, bits: number): ShortestDigits | null {
  const expField = (bits >>> 23) & 0xff;
  if (expField > 1 && (bits & 0x7fffff) === 0) return null;
  // Reading back is monotonic in p (the nearest (p+1)-digit decimal is no farther than the
  // nearest p-digit one) and 9 digits always suffice for a float32: binary search for the least p.
  const readsBack = (precision: number) => Math.fround(Number(value.toExponential(precision - 1))) === value;
  let low = 1;
  let high = 9;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (readsBack(mid)) high = mid;
    else low = mid + 1;
  }
  const [mantissa, exp] = value.toExponential(low - 1).split('e');
  // a tie between two p-digit decimals: the value itself has exactly p + 1 digits ending in 5
  const next = value.toExponential(low);
  if (next.split('e')[0].endsWith('5') && Number(next) === value) return null;
  return { digits: mantissa.replace('.', '').replace(/0+$/, '') || '0', exponent: Number(exp) };
}

function positional(digits: string, exponent: number): string {
  if (exponent < 0) return `0.${'0'.repeat(-exponent - 1)}${digits}`;
  const intLen = exponent + 1;
  if (digits.length <= intLen) return `${digits}${'0'.repeat(intLen - digits.length)}.0`;
  return `${digits.slice(0, intLen)}.${digits.slice(intLen)}`;
}

function scientific(digits: string, exponent: number): string {
  const mantissa = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
  const sign = exponent < 0 ? '-' : '+';
  return `${mantissa}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
}

/** `str(numpy.float32(x))` for a value that is (or is rounded to) a float32. */
export function formatFloat32(x: number): string {
  f32[0] = x;
  const bits = u32[0];
  const value = f32[0];
  if (Number.isNaN(value)) return 'nan';
  const negative = bits >>> 31 === 1;
  const sign = negative ? '-' : '';
  if (!Number.isFinite(value)) return `${sign}inf`;
  if (value === 0) return `${sign}0.0`;
  const magnitudeBits = bits & 0x7fffffff;
  const { digits, exponent } = fastShortestDigits(Math.abs(value), magnitudeBits) ?? shortestDigits(magnitudeBits);
  const magnitude = Math.abs(value);
  const text =
    magnitude >= POSITIONAL_MIN && magnitude < POSITIONAL_MAX
      ? positional(digits, exponent)
      : scientific(digits, exponent);
  return sign + text;
}
