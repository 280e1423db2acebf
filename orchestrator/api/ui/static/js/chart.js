// A line chart over labelled periods (weeks), on uPlot: created once, then fed new data with
// setData, so a refresh redraws without rebuilding the DOM.
import uPlot from "../vendor/uplot/uPlot.esm.js";

export class PeriodChart {
  /** `series`: [{label, stroke, scale}]; `scales`: uPlot scales for those names. */
  constructor(container, series, scales, height = 220) {
    this.container = container;
    this.series = series;
    this.scales = scales;
    this.height = height;
    this.labels = [];
    this.plot = null;
    this.observer = new ResizeObserver(() => this.plot?.setSize({ width: this.#width(), height: this.height }));
    this.observer.observe(container);
  }

  /** Removes the chart from the page. */
  destroy() {
    this.observer.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  #width() {
    return Math.max(320, this.container.clientWidth - 8);
  }

  /** `labels`: the periods in order; `columns`: one array of values (or null) per series. */
  set(labels, columns) {
    this.labels = labels;
    const data = [labels.map((_, i) => i), ...columns];
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    const periodAxis = {
      incrs: [1, 2, 4, 8, 13, 26, 52],
      values: (_u, splits) => splits.map((i) => (Number.isInteger(i) ? this.labels[i] ?? "" : "")),
    };
    const valueAxes = [...new Set(this.series.map((s) => s.scale))].map((scale, i) => ({
      scale,
      side: i === 0 ? 3 : 1,
      grid: { show: i === 0 },
      label: this.scales[scale].label,
    }));
    this.plot = new uPlot(
      {
        width: this.#width(),
        height: this.height,
        scales: { x: { time: false }, ...this.scales },
        axes: [periodAxis, ...valueAxes],
        series: [
          { label: "week", value: (_u, i) => (i === null ? "" : this.labels[i] ?? "") },
          ...this.series.map((s) => ({ ...s, width: 2, points: { show: true, size: 6 }, spanGaps: true })),
        ],
      },
      data,
      this.container,
    );
  }
}
