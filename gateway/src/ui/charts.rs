//! Small inline SVG charts of a function's hour: calls per minute (errors in red) and latency
//! (p50 and p99 lines). No script, no library: the numbers are in the markup.

use maud::{Markup, html};

use crate::stats::Hour;

const WIDTH: f64 = 240.0;
const HEIGHT: f64 = 40.0;

/// Bars of calls per minute, the 5xx part of each in red.
pub fn calls(hour: &Hour) -> Markup {
    let max = hour
        .minutes
        .iter()
        .map(|m| m.count)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = WIDTH / hour.minutes.len().max(1) as f64;
    html! {
        svg.spark width=(WIDTH) height=(HEIGHT) viewBox={"0 0 " (WIDTH) " " (HEIGHT)} role="img"
            aria-label={"calls per minute, peak " (max as u64)} {
            @for (i, minute) in hour.minutes.iter().enumerate() {
                @if minute.count > 0 {
                    @let h = (minute.count as f64 / max * HEIGHT).max(1.0);
                    @let e = minute.errors as f64 / max * HEIGHT;
                    rect x=(format!("{:.1}", i as f64 * step)) y=(format!("{:.1}", HEIGHT - h))
                        width=(format!("{:.1}", (step - 1.0).max(1.0))) height=(format!("{:.1}", h - e)) {
                        title { (minute.start) ": " (minute.count) " calls, " (minute.errors) " errors" }
                    }
                    @if minute.errors > 0 {
                        rect.err x=(format!("{:.1}", i as f64 * step)) y=(format!("{:.1}", HEIGHT - e))
                            width=(format!("{:.1}", (step - 1.0).max(1.0))) height=(format!("{:.1}", e)) {}
                    }
                }
            }
        }
    }
}

/// p50 and p99 latency lines (log scale: 1 ms to 60 s), minutes without calls skipped.
pub fn latency(hour: &Hour) -> Markup {
    let step = WIDTH / hour.minutes.len().max(1) as f64;
    let y = |ms: f64| {
        let span = (60_000f64).log10();
        HEIGHT - (ms.max(1.0).log10() / span).min(1.0) * (HEIGHT - 2.0) - 1.0
    };
    let line = |pick: fn(&crate::stats::Minute) -> Option<f64>| -> String {
        hour.minutes
            .iter()
            .enumerate()
            .filter_map(|(i, m)| pick(m).map(|ms| format!("{:.1},{:.1}", i as f64 * step, y(ms))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    html! {
        svg.spark width=(WIDTH) height=(HEIGHT) viewBox={"0 0 " (WIDTH) " " (HEIGHT)} role="img"
            aria-label="latency p50 and p99 per minute" {
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
