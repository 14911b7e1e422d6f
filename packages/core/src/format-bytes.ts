// Byte counts as short human figures, for logs, errors and inspectors: one home for every "12.3 MB".

const UNIT_BYTES = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9, MiB: 2 ** 20, GiB: 2 ** 30 } as const;

export type ByteUnit = keyof typeof UNIT_BYTES;

/**
 * Bytes as a short figure. Without `unit`, decimal units picked by size: 1.23 GB, 34.5 MB, 12.3 kB, 512 B.
 * With `unit`, that unit with `digits` decimals (default: 2 below one unit, 1 from there):
 * formatBytes(3 * 2 ** 30, "GiB") = "3.0 GiB", formatBytes(5e8, "MiB", 0) = "477 MiB".
 */
export function formatBytes(n: number, unit?: ByteUnit, digits?: number): string {
  if (unit === undefined) {
    if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
    if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
    if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
    return `${Math.round(n)} B`;
  }
  const v = n / UNIT_BYTES[unit];
  return `${v.toFixed(digits ?? (v < 1 ? 2 : 1))} ${unit}`;
}
