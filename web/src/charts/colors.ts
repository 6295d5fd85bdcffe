// A categorical palette that reads on both themes; runs keep their colour across charts by index.

const PALETTE = ["#3b7ddd", "#e8702a", "#2ca05a", "#d64550", "#8d67c9", "#b08a2e", "#1fa5b8", "#d462b0", "#6b8e23", "#7f7f7f"];

export function colorFor(index: number): string {
  return PALETTE[index % PALETTE.length]!;
}

/** `#rrggbb` with an alpha, for the faint raw line and the band fill. */
export function withAlpha(hex: string, alpha: number): string {
  const a = Math.round(Math.max(0, Math.min(1, alpha)) * 255)
    .toString(16)
    .padStart(2, "0");
  return hex + a;
}
