//! The self-contained HTML page: inline SVG charts drawn by `plotters` (SVG backend), no script,
//! no external resource. Every figure is on the page twice: in the chart (value labels) and as
//! data attributes (`data-*` on each `<section>`/`<figure>`, JSON of the exact numbers), so a
//! browser test can read them back.

use std::fmt::Write as _;

use plotters::prelude::*;
use serde_json::Value;

const W: u32 = 560;
const H: u32 = 300;
const BLUE_: RGBColor = RGBColor(31, 119, 180);
const ORANGE_: RGBColor = RGBColor(255, 127, 14);
const RED_: RGBColor = RGBColor(214, 39, 40);

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A label safe to put into a chart (error codes come from devices).
fn label(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        .take(24)
        .collect()
}

/// `YYYY-MM-DD HH:MM` (UTC) of Unix seconds.
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil from days (proleptic Gregorian)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// An x-axis label: `MM-DD HH:MM`, with seconds when the buckets are shorter than a minute.
fn tick(secs: i64, interval: f64) -> String {
    let day: String = utc(secs).chars().skip(5).collect();
    if interval < 60.0 {
        format!("{day}:{:02}", secs.rem_euclid(60))
    } else {
        day
    }
}

fn f(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{x:.digits$}"))
}

type Series = Vec<(f64, f64)>;

fn x_range(points: &[&Series], interval: f64) -> std::ops::Range<f64> {
    let xs = points.iter().flat_map(|s| s.iter().map(|p| p.0));
    let lo = xs.clone().fold(f64::INFINITY, f64::min);
    let hi = xs.fold(f64::NEG_INFINITY, f64::max);
    if lo.is_finite() && hi.is_finite() {
        (lo - interval * 0.5)..(hi + interval * 1.5)
    } else {
        0.0..1.0
    }
}

/// A line chart of time series (x = Unix seconds) with a value label on every point.
fn line_chart(
    title: &str,
    y_desc: &str,
    series: &[(&str, RGBColor, Series)],
    y_max: Option<f64>,
    interval: f64,
    digits: usize,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let all: Vec<&Series> = series.iter().map(|s| &s.2).collect();
        let top = y_max.unwrap_or_else(|| {
            all.iter()
                .flat_map(|s| s.iter().map(|p| p.1))
                .fold(1.0, f64::max)
                * 1.2
        });
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(x_range(&all, interval), 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(4)
            .x_label_formatter(&|x| tick(*x as i64, interval))
            .y_desc(y_desc)
            .draw()
            .map_err(|e| e.to_string())?;
        for (name, color, pts) in series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
            chart
                .draw_series(
                    pts.iter()
                        .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
                )
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(pts.iter().map(|&(x, y)| {
                    Text::new(
                        format!("{y:.digits$}"),
                        (x, y),
                        ("sans-serif", 11).into_font().color(&color),
                    )
                }))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A bar chart of failures per error code, with the count on every bar.
fn bar_chart(title: &str, bars: &[(String, u64)]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let n = bars.len().max(1) as u32;
        let top = bars.iter().map(|b| b.1).max().unwrap_or(1).max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(40)
            .build_cartesian_2d((0u32..n - 1).into_segmented(), 0u64..top + top / 5 + 1)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = bars.iter().map(|b| label(&b.0)).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len().max(1))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc("failures")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(RED_.filled())
                    .margin(12)
                    .data(bars.iter().enumerate().map(|(i, b)| (i as u32, b.1))),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Text::new(
                    b.1.to_string(),
                    (SegmentValue::CenterOf(i as u32), b.1),
                    ("sans-serif", 12),
                )
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn series(v: &Value, key: &str, list: &str) -> Series {
    v.get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| Some((b.get("time")?.as_f64()?, f(b, key)?)))
        .collect()
}

fn attr_json(v: &Value) -> String {
    esc(&v.to_string())
}

/// One source's section (hawkBit or telemetry): headline figures, three charts, errors table.
fn source_section(
    out: &mut String,
    id: &str,
    title: &str,
    s: &Value,
    interval: i64,
) -> Result<(), String> {
    let dl = s.get("download_ms").cloned().unwrap_or(Value::Null);
    let rate = f(s, "rate");
    let p50 = f(&dl, "p50");
    let p95 = f(&dl, "p95");
    let last = s.get("success_rate_last").cloned().unwrap_or(Value::Null);
    let _ = writeln!(
        out,
        "<section class=\"source\" id=\"{id}\" data-source=\"{id}\" data-success-rate=\"{}\" data-success=\"{}\" data-failure=\"{}\" data-p50-ms=\"{}\" data-p95-ms=\"{}\" data-downloads=\"{}\">\n<h2>{}</h2>",
        rate.map_or_else(String::new, |r| r.to_string()),
        s.get("success").map_or_else(String::new, Value::to_string),
        s.get("failure").map_or_else(String::new, Value::to_string),
        p50.map_or_else(String::new, |r| r.to_string()),
        p95.map_or_else(String::new, |r| r.to_string()),
        dl.get("count").map_or_else(String::new, Value::to_string),
        esc(title)
    );
    let _ = writeln!(
        out,
        "<p class=\"figures\">Success rate <b class=\"rate\">{} %</b> ({} succeeded, {} failed; last outcome per device {} % of {}) · download P50 <b class=\"p50\">{} ms</b>, P95 <b class=\"p95\">{} ms</b> over {} downloads</p>",
        fmt_opt(rate, 1),
        s.get("success").map_or_else(String::new, Value::to_string),
        s.get("failure").map_or_else(String::new, Value::to_string),
        fmt_opt(f(&last, "rate"), 1),
        last.get("devices")
            .map_or_else(String::new, Value::to_string),
        fmt_opt(p50, 0),
        fmt_opt(p95, 0),
        dl.get("count").map_or_else(String::new, Value::to_string),
    );
    let iv = interval as f64;
    let rate_s = series(s, "rate", "success_rate");
    let svg = line_chart(
        "Success rate per interval",
        "%",
        &[("success rate", BLUE_, rate_s)],
        Some(105.0),
        iv,
        1,
    )?;
    let _ = writeln!(
        out,
        "<figure class=\"chart\" data-chart=\"success-rate\" data-values=\"{}\">{svg}<figcaption>100 × success / (success + failure) per {}-second interval (UTC)</figcaption></figure>",
        attr_json(s.get("success_rate").unwrap_or(&Value::Null)),
        interval
    );
    let svg = line_chart(
        "Download duration P50 / P95",
        "ms",
        &[
            ("P50", BLUE_, series(&dl, "p50", "buckets")),
            ("P95", ORANGE_, series(&dl, "p95", "buckets")),
        ],
        None,
        iv,
        0,
    )?;
    let _ = writeln!(
        out,
        "<figure class=\"chart\" data-chart=\"download-duration\" data-values=\"{}\">{svg}<figcaption>percentile_cont of the download durations per interval</figcaption></figure>",
        attr_json(dl.get("buckets").unwrap_or(&Value::Null)),
    );
    let errors: Vec<(String, u64, u64)> = s
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e.get("error_code")?.as_str()?.to_owned(),
                e.get("failures")?.as_u64()?,
                e.get("devices")?.as_u64()?,
            ))
        })
        .collect();
    let bars: Vec<(String, u64)> = errors.iter().map(|e| (e.0.clone(), e.1)).collect();
    let svg = bar_chart("Failures by error code", &bars)?;
    let _ = writeln!(
        out,
        "<figure class=\"chart\" data-chart=\"errors\" data-values=\"{}\">{svg}<figcaption>failures by error code (unknown: none was sent)</figcaption></figure>",
        attr_json(s.get("errors").unwrap_or(&Value::Null)),
    );
    out.push_str(
        "<table class=\"errors\"><tr><th>error code</th><th>failures</th><th>devices</th></tr>\n",
    );
    for (code, n, d) in &errors {
        let _ = writeln!(
            out,
            "<tr data-error-code=\"{c}\"><td>{c}</td><td>{n}</td><td>{d}</td></tr>",
            c = esc(code)
        );
    }
    if errors.is_empty() {
        out.push_str("<tr><td colspan=\"3\">no failures</td></tr>\n");
    }
    out.push_str("</table>\n</section>\n");
    Ok(())
}

/// The whole page from the report's JSON document.
pub fn page(doc: &Value) -> Result<String, String> {
    let interval = doc
        .get("interval_secs")
        .and_then(Value::as_i64)
        .unwrap_or(60);
    let ro = doc.get("rollout").filter(|r| !r.is_null());
    let title = ro.map_or_else(
        || "eyas fleet report".to_owned(),
        |r| {
            format!(
                "Rollout {} “{}”",
                r.get("id").map_or_else(String::new, Value::to_string),
                r.get("name").and_then(Value::as_str).unwrap_or("")
            )
        },
    );
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\n\
         body{{font-family:sans-serif;margin:1.5em;color:#222}} h1{{font-size:1.4em}} h2{{font-size:1.15em;margin-top:1.5em}}\n\
         figure{{display:inline-block;margin:0.5em;vertical-align:top}} figcaption{{font-size:0.8em;color:#555}}\n\
         table{{border-collapse:collapse;margin:0.5em 0}} td,th{{border:1px solid #bbb;padding:0.2em 0.6em;text-align:right}}\n\
         th{{background:#eee}} td:first-child{{text-align:left}}\n</style></head>\n<body>\n<h1>{t}</h1>\n",
        t = esc(&title)
    );
    let _ = writeln!(
        out,
        "<p class=\"meta\" data-interval-secs=\"{interval}\" data-generated-at=\"{g}\">Generated by eyasctl {v} at {g} UTC; interval {interval} s.</p>",
        g = esc(doc
            .get("generated_at")
            .and_then(Value::as_str)
            .unwrap_or("")),
        v = env!("CARGO_PKG_VERSION"),
    );
    if let Some(r) = ro {
        let _ = writeln!(
            out,
            "<section id=\"rollout\" data-rollout-id=\"{}\" data-status=\"{}\" data-targets=\"{}\"><h2>Deployment groups</h2><p>Status <b>{}</b>, {} targets.</p>",
            r.get("id").map_or_else(String::new, Value::to_string),
            esc(r.get("status").and_then(Value::as_str).unwrap_or("")),
            r.get("targets").map_or_else(String::new, Value::to_string),
            esc(r.get("status").and_then(Value::as_str).unwrap_or("")),
            r.get("targets").map_or_else(String::new, Value::to_string),
        );
        out.push_str("<table class=\"groups\"><tr><th>group</th><th>status</th><th>targets</th><th>succeeded</th><th>failed</th><th>running</th><th>not started / canceled</th><th>success rate</th></tr>\n");
        for g in r
            .get("groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let n = |k: &str| g.get(k).map_or_else(String::new, Value::to_string);
            let _ = writeln!(
                out,
                "<tr data-group=\"{name}\" data-targets=\"{}\" data-success=\"{}\" data-error=\"{}\"><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                n("targets"),
                n("success"),
                n("error"),
                esc(g.get("status").and_then(Value::as_str).unwrap_or("")),
                n("targets"),
                n("success"),
                n("error"),
                n("running"),
                n("other"),
                f(g, "success_rate").map_or_else(|| "–".into(), |r| format!("{r:.1} %")),
                name = esc(g.get("name").and_then(Value::as_str).unwrap_or("")),
            );
        }
        out.push_str("</table></section>\n");
    }
    if let Some(h) = doc.get("hawkbit").filter(|v| !v.is_null()) {
        source_section(
            &mut out,
            "hawkbit",
            "hawkBit: action status history",
            h,
            interval,
        )?;
    }
    if let Some(t) = doc.get("telemetry").filter(|v| !v.is_null()) {
        source_section(
            &mut out,
            "telemetry",
            "Telemetry: what the devices published (ThingsBoard keys)",
            t,
            interval,
        )?;
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(1_785_531_600), "2026-07-31 21:00");
        assert_eq!(utc(1_785_542_400), "2026-08-01 00:00");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(label("E<script>1"), "Escript1");
    }
}
