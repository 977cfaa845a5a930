//! Small inline SVG charts of a function's hour: calls per minute (errors in red) and latency
//! (p50 and p99 lines), each with a time axis (60 min ago to now) and a labelled scale. No
//! script, no library: the numbers are in the markup.

use maud::{Markup, html};

use crate::stats::Hour;

/// The plot area, and the margins for the scale (left) and the time axis (below).
const WIDTH: f64 = 240.0;
const HEIGHT: f64 = 40.0;
const LEFT: f64 = 44.0;
const TOP: f64 = 6.0;
const BELOW: f64 = 14.0;
const SVG_WIDTH: f64 = LEFT + WIDTH + 14.0;
const SVG_HEIGHT: f64 = TOP + HEIGHT + BELOW;

/// The time axis under a plot: the hour from 60 minutes ago to now.
fn time_axis() -> Markup {
    let base = TOP + HEIGHT;
    html! {
        line.axis x1=(LEFT) y1=(base) x2=(LEFT + WIDTH) y2=(base) {}
        @for (label, x) in [("-60 min", 0.0), ("-30", WIDTH / 2.0), ("now", WIDTH)] {
            line.axis x1=(LEFT + x) y1=(base) x2=(LEFT + x) y2=(base + 3.0) {}
            text.tick x=(LEFT + x) y=(base + 12.0) text-anchor="middle" { (label) }
        }
    }
}

/// A label of the scale, right-aligned left of the plot at height `y`, with a grid line.
fn scale_mark(label: &str, y: f64) -> Markup {
    html! {
        line.grid x1=(LEFT) y1=(format!("{y:.1}")) x2=(LEFT + WIDTH) y2=(format!("{y:.1}")) {}
        text.tick x=(LEFT - 4.0) y=(format!("{:.1}", y + 3.0)) text-anchor="end" { (label) }
    }
}

/// Bars of calls per minute, the 5xx part of each in red; the scale runs from 0 to the
/// busiest minute.
pub fn calls(hour: &Hour) -> Markup {
    let max = hour
        .minutes
        .iter()
        .map(|m| m.count)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = WIDTH / hour.minutes.len().max(1) as f64;
    let base = TOP + HEIGHT;
    html! {
        svg.spark width=(SVG_WIDTH) height=(SVG_HEIGHT) viewBox={"0 0 " (SVG_WIDTH) " " (SVG_HEIGHT)} role="img"
            aria-label={"calls per minute over the last hour, peak " (max as u64)} {
            (scale_mark(&format!("{}/min", max as u64), TOP))
            (scale_mark("0", base))
            (time_axis())
            @for (i, minute) in hour.minutes.iter().enumerate() {
                @if minute.count > 0 {
                    @let h = (minute.count as f64 / max * HEIGHT).max(1.0);
                    @let e = minute.errors as f64 / max * HEIGHT;
                    @let x = LEFT + i as f64 * step;
                    rect x=(format!("{x:.1}")) y=(format!("{:.1}", base - h))
                        width=(format!("{:.1}", (step - 1.0).max(1.0))) height=(format!("{:.1}", h - e)) {
                        title { (minute.start) ": " (minute.count) " calls, " (minute.errors) " errors" }
                    }
                    @if minute.errors > 0 {
                        rect.err x=(format!("{x:.1}")) y=(format!("{:.1}", base - e))
                            width=(format!("{:.1}", (step - 1.0).max(1.0))) height=(format!("{:.1}", e)) {}
                    }
                }
            }
        }
    }
}

/// Height of `ms` on the latency plot (log scale: 1 ms to 60 s).
fn latency_y(ms: f64) -> f64 {
    let span = (60_000f64).log10();
    TOP + HEIGHT - (ms.max(1.0).log10() / span).min(1.0) * HEIGHT
}

/// p50 and p99 latency lines (log scale: 1 ms to 60 s), minutes without calls skipped.
pub fn latency(hour: &Hour) -> Markup {
    let step = WIDTH / hour.minutes.len().max(1) as f64;
    let line = |pick: fn(&crate::stats::Minute) -> Option<f64>| -> String {
        hour.minutes
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                pick(m).map(|ms| format!("{:.1},{:.1}", LEFT + i as f64 * step, latency_y(ms)))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    html! {
        svg.spark width=(SVG_WIDTH) height=(SVG_HEIGHT) viewBox={"0 0 " (SVG_WIDTH) " " (SVG_HEIGHT)} role="img"
            aria-label="latency p50 and p99 per minute over the last hour, log scale 1 ms to 60 s" {
            @for (label, ms) in [("60 s", 60_000.0), ("1 s", 1000.0), ("1 ms", 1.0)] {
                (scale_mark(label, latency_y(ms)))
            }
            (time_axis())
            polyline points=(line(|m| m.p50_ms)) {}
            polyline.p99 points=(line(|m| m.p99_ms)) {}
        }
    }
}

/// "12 ms", "1.5 s", or "-".
pub fn ms(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(v) if v >= 1000.0 => format!("≤{:.1} s", v / 1000.0),
        Some(v) => format!("≤{v:.0} ms"),
    }
}
