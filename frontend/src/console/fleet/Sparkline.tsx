// An inline SVG sparkline (no chart library): values left to right, oldest first.
export function Sparkline({
  values,
  label,
  width = 160,
  height = 32,
  testId,
}: {
  values: number[];
  label: string;
  width?: number;
  height?: number;
  testId?: string;
}) {
  if (values.length === 0) return null;
  const max = Math.max(...values);
  const min = Math.min(...values);
  const span = max - min || 1;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const points = values
    .map((v, i) => {
      const x = values.length > 1 ? i * step : width / 2;
      // 2 px margin so the stroke is not clipped at the extremes.
      const y = height - 2 - ((v - min) / span) * (height - 4);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
  return (
    <svg
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={label}
      data-testid={testId}
      style={{ display: "block" }}
    >
      <polyline points={points} fill="none" stroke="var(--accent)" strokeWidth="1.5" strokeLinejoin="round" />
    </svg>
  );
}
