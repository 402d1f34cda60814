//! Failed-authentication heatmaps: counted from the hourly rollups, bucketed in the operator's
//! time zone, drawn with plotters as SVG (shown in the window through an `<img>`) or PNG.
//!
//! Every cell is a set of whole UTC hours, because the rollups are hourly: an hour belongs to
//! the local day, weekday and hour of its first instant. Across a DST change a local day has
//! 23 or 25 hours, and a repeated local hour collects both UTC hours; in a zone with a
//! half-hour offset the hours start at :30, and the labels say so. A cell carries the exact
//! hours it counts, so opening it in the timeline shows exactly its events.

use std::collections::{BTreeMap, HashMap};
use std::sync::Once;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use gatehouse_store::events::{EventFilter, EventStore, Scope, StringId};

use super::Analytics;
use crate::{Error, Result};

pub(crate) use gatehouse_store::events::HOUR_US;

/// Rows of the address chart: the addresses with the most failures in the window.
pub const TOP_ADDRESSES: usize = 12;
const WIDTH: u32 = 960;
const FONT: &str = "sans-serif";

/// Which heatmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum HeatmapKind {
    /// Day of week x hour of day.
    #[default]
    WeekdayHour,
    /// The top client addresses x time (hours for the last day, days otherwise).
    AddressTime,
    /// Instances x days (hours for the last day).
    InstanceDay,
}

/// How far back a heatmap, the offenders table or the alerts list looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// The last 24 hours, by hour.
    Day,
    /// The last 7 days, including today.
    Week,
    /// The last 30 days, including today.
    #[default]
    Month,
    /// The last 90 days, including today.
    Quarter,
}

impl Window {
    pub fn days(self) -> i64 {
        match self {
            Window::Day => 1,
            Window::Week => 7,
            Window::Month => 30,
            Window::Quarter => 90,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Window::Day => "last 24 hours",
            Window::Week => "last 7 days",
            Window::Month => "last 30 days",
            Window::Quarter => "last 90 days",
        }
    }
}

impl std::str::FromStr for Window {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "day" | "24h" => Ok(Window::Day),
            "week" | "7d" => Ok(Window::Week),
            "month" | "30d" => Ok(Window::Month),
            "quarter" | "90d" => Ok(Window::Quarter),
            other => Err(Error::InvalidInput {
                field: "window",
                reason: format!("\"{other}\" is not one of day, week, month, quarter"),
            }),
        }
    }
}

/// Colours for the window's theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ChartTheme {
    #[default]
    Light,
    Dark,
}

/// How counts map to colours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ColourScale {
    /// Logarithmic: 3 failures still show beside a cell of a thousand.
    #[default]
    Log,
    /// Proportional to the count: the busiest cells stand out, small ones fade.
    Linear,
}

impl ColourScale {
    pub fn words(self) -> &'static str {
        match self {
            ColourScale::Log => "log scale",
            ColourScale::Linear => "proportional scale",
        }
    }

    /// Where `count` falls between none (0) and `max` (1).
    fn position(self, count: u64, max: u64) -> f64 {
        if count == 0 || max == 0 {
            return 0.0;
        }
        let t = match self {
            ColourScale::Log => (count as f64).ln_1p() / (max as f64).ln_1p(),
            ColourScale::Linear => count as f64 / max as f64,
        };
        t.clamp(0.0, 1.0)
    }

    /// The count at position `t`, the inverse of [`ColourScale::position`].
    fn count_at(self, t: f64, max: u64) -> u64 {
        let c = match self {
            ColourScale::Log => ((max as f64).ln_1p() * t).exp_m1(),
            ColourScale::Linear => max as f64 * t,
        };
        (c.round() as u64).clamp(1, max.max(1))
    }
}

/// What to draw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct HeatmapQuery {
    pub kind: HeatmapKind,
    pub window: Window,
    pub instance: Option<String>,
    /// Service profile: the instances running it.
    pub service: Option<String>,
    pub theme: ChartTheme,
    pub scale: ColourScale,
}

/// One cell: what it counts and how to open exactly those events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct HeatCell {
    pub row: u32,
    pub column: u32,
    #[ts(type = "number")]
    pub count: u64,
    /// "Mon 14:00-15:00", "203.0.113.9 on 23 Nov".
    pub label: String,
    /// The timeline filter that shows exactly the events counted here.
    pub filter: EventFilter,
}

/// Where the grid lies in the picture, as fractions of its width and height, so the window
/// can lay its pointer and keyboard targets over the `<img>`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
pub struct GridBox {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// A heatmap: its picture and its cells.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct Heatmap {
    pub title: String,
    /// The window, the time zone and the filters, as stated in the picture.
    pub subtitle: String,
    pub time_zone: String,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    pub cells: Vec<HeatCell>,
    #[ts(type = "number")]
    pub max: u64,
    /// How counts map to colours, as the legend says.
    pub scale: ColourScale,
    #[ts(type = "number")]
    pub total: u64,
    pub width: u32,
    pub height: u32,
    pub grid: GridBox,
    pub svg: String,
}

/// Picture formats for export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    Svg,
    Png,
}

impl ImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Svg => "svg",
            ImageFormat::Png => "png",
        }
    }
}

/// The operator's time zone: an IANA name, or the system's when `None` or unknown.
pub fn time_zone(name: Option<&str>) -> TimeZone {
    name.and_then(|n| TimeZone::get(n).ok())
        .unwrap_or_else(TimeZone::system)
}

/// A time zone's display name ("Europe/Berlin", or "UTC+05:30" for a fixed zone).
pub fn zone_name(tz: &TimeZone, at: Timestamp) -> String {
    match tz.iana_name() {
        Some(name) => name.to_owned(),
        None => format!("UTC{}", tz.to_offset(at)),
    }
}

/// The grid's rows and columns as lists of UTC hours, before counting.
struct Layout {
    rows: Vec<String>,
    columns: Vec<String>,
    /// Column of each UTC hour in the window (and row, for the weekday chart).
    placement: BTreeMap<i64, (Option<u32>, u32)>,
    /// For labels of a cell: the column's description.
    column_titles: Vec<String>,
    first_hour: i64,
    last_hour: i64,
}

fn local(hour: i64, tz: &TimeZone) -> Zoned {
    // Hours since the epoch fit a Timestamp for any date this console will see.
    Timestamp::from_microsecond(hour * HOUR_US)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(tz.clone())
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Hours of the window: the last 24 for [`Window::Day`], else from the local midnight that
/// starts the first day.
pub(crate) fn window_hours(window: Window, now_us: i64, tz: &TimeZone) -> (i64, i64) {
    let now_hour = now_us.div_euclid(HOUR_US);
    if window == Window::Day {
        return (now_hour - 23, now_hour);
    }
    let today = local(now_hour, tz).date();
    let first_day = today
        .checked_sub((window.days() - 1).days())
        .unwrap_or(today);
    let midnight = first_day
        .to_zoned(tz.clone())
        .map(|z| z.timestamp().as_microsecond())
        .unwrap_or(now_hour * HOUR_US);
    // The first hour that starts at or after local midnight.
    let first = midnight.div_euclid(HOUR_US) + i64::from(midnight.rem_euclid(HOUR_US) != 0);
    (first, now_hour)
}

fn layout(kind: HeatmapKind, window: Window, now_us: i64, tz: &TimeZone) -> Layout {
    let (first_hour, last_hour) = window_hours(window, now_us, tz);
    let mut placement = BTreeMap::new();
    let mut columns = Vec::new();
    let mut column_titles = Vec::new();
    let mut rows = Vec::new();
    match kind {
        HeatmapKind::WeekdayHour => {
            rows = WEEKDAYS.iter().map(|d| (*d).to_owned()).collect();
            // Hours start at :30 in a half-hour zone: label columns by their true start.
            let minute = local(last_hour, tz).minute();
            for h in 0..24 {
                columns.push(format!("{h:02}"));
                column_titles.push(format!("{h:02}:{minute:02}"));
            }
            for hour in first_hour..=last_hour {
                let z = local(hour, tz);
                let weekday = z.weekday().to_monday_zero_offset() as u32;
                placement.insert(hour, (Some(weekday), z.hour() as u32));
            }
        }
        HeatmapKind::AddressTime | HeatmapKind::InstanceDay if window == Window::Day => {
            for (column, hour) in (first_hour..=last_hour).enumerate() {
                let z = local(hour, tz);
                columns.push(format!("{:02}:{:02}", z.hour(), z.minute()));
                column_titles.push(format!(
                    "{} {:02}:{:02}",
                    z.strftime("%-d %b"),
                    z.hour(),
                    z.minute()
                ));
                placement.insert(hour, (None, column as u32));
            }
        }
        HeatmapKind::AddressTime | HeatmapKind::InstanceDay => {
            let first_day = local(first_hour, tz).date();
            let mut day = first_day;
            let last_day = local(last_hour, tz).date();
            while day <= last_day {
                columns.push(day.strftime("%-d %b").to_string());
                column_titles.push(day.strftime("%a %-d %b %Y").to_string());
                match day.tomorrow() {
                    Ok(next) => day = next,
                    Err(_) => break,
                }
            }
            for hour in first_hour..=last_hour {
                let date = local(hour, tz).date();
                let column = (date - first_day).get_days().max(0) as u32;
                placement.insert(hour, (None, column));
            }
        }
    }
    Layout {
        rows,
        columns,
        placement,
        column_titles,
        first_hour,
        last_hour,
    }
}

/// Count, lay out and draw a heatmap. `fleet` lists every enrolled instance with its
/// profile, for the instance chart's rows and the service filter.
pub fn build(
    store: &EventStore,
    query: &HeatmapQuery,
    fleet: &[(String, String)],
    now_us: i64,
    tz: &TimeZone,
) -> Result<Heatmap> {
    let service_instances: Option<Vec<String>> = query.service.as_ref().map(|service| {
        fleet
            .iter()
            .filter(|(_, profile)| profile == service)
            .map(|(name, _)| name.clone())
            .collect()
    });
    let scope = Scope {
        instance: query.instance.as_deref(),
        service_instances: service_instances.as_deref(),
    };
    let mut layout = layout(query.kind, query.window, now_us, tz);
    let (first, last) = (layout.first_hour, layout.last_hour);
    // (row, column) -> (count, hours)
    let mut counts: HashMap<(u32, u32), u64> = HashMap::new();
    // Per row, the address or instance it stands for.
    let mut row_keys: Vec<Option<String>> = Vec::new();
    match query.kind {
        HeatmapKind::WeekdayHour => {
            row_keys = vec![None; 7];
            for (hour, _, n) in store.attempts_by_hour(&scope, first, last)? {
                if let Some(&(Some(row), column)) = layout.placement.get(&hour) {
                    *counts.entry((row, column)).or_default() += n;
                }
            }
        }
        HeatmapKind::AddressTime => {
            let top = store.top_addresses(&scope, first, last, TOP_ADDRESSES)?;
            let ids: Vec<StringId> = top.iter().map(|(ip, _)| *ip).collect();
            for (ip, _) in &top {
                let name = store.string(*ip).unwrap_or("?").to_owned();
                layout.rows.push(name.clone());
                row_keys.push(Some(name));
            }
            for (hour, ip, n) in store.attempts_of_addresses(&scope, &ids, first, last)? {
                let row = ids.iter().position(|i| *i == ip);
                if let (Some(row), Some(&(_, column))) = (row, layout.placement.get(&hour)) {
                    *counts.entry((row as u32, column)).or_default() += n;
                }
            }
        }
        HeatmapKind::InstanceDay => {
            let by_hour = store.attempts_by_hour(&scope, first, last)?;
            let mut names: Vec<String> = fleet
                .iter()
                .map(|(name, _)| name.clone())
                .filter(|name| query.instance.as_ref().is_none_or(|i| i == name))
                .filter(|name| {
                    service_instances
                        .as_ref()
                        .is_none_or(|list| list.contains(name))
                })
                .collect();
            for (_, instance, _) in &by_hour {
                if let Some(name) = store.string(*instance) {
                    if !names.iter().any(|n| n == name) {
                        names.push(name.to_owned());
                    }
                }
            }
            names.sort();
            for (hour, instance, n) in by_hour {
                let name = store.string(instance).unwrap_or("");
                let row = names.iter().position(|r| r == name);
                if let (Some(row), Some(&(_, column))) = (row, layout.placement.get(&hour)) {
                    *counts.entry((row as u32, column)).or_default() += n;
                }
            }
            row_keys = names.iter().cloned().map(Some).collect();
            layout.rows = names;
        }
    }
    // Hours of each cell, for its filter.
    let mut cell_hours: HashMap<(u32, u32), Vec<i64>> = HashMap::new();
    for (&hour, &(row, column)) in &layout.placement {
        match row {
            Some(row) => cell_hours.entry((row, column)).or_default().push(hour),
            None => {
                for row in 0..layout.rows.len() as u32 {
                    cell_hours.entry((row, column)).or_default().push(hour);
                }
            }
        }
    }
    let mut cells = Vec::with_capacity(layout.rows.len() * layout.columns.len());
    for (row, row_name) in layout.rows.iter().enumerate() {
        for (column, column_title) in layout.column_titles.iter().enumerate() {
            let key = (row as u32, column as u32);
            let hours = cell_hours.remove(&key).unwrap_or_default();
            let count = counts.get(&key).copied().unwrap_or(0);
            let label = match query.kind {
                HeatmapKind::WeekdayHour => format!("{row_name} {column_title}"),
                _ => format!("{row_name}, {column_title}"),
            };
            let mut filter = EventFilter {
                attempts: true,
                instance: query.instance.clone(),
                service: query.service.clone(),
                from_us: hours.first().map(|h| h * HOUR_US),
                to_us: hours.last().map(|h| (h + 1) * HOUR_US),
                hours: Some(hours),
                ..EventFilter::default()
            };
            match query.kind {
                HeatmapKind::AddressTime => filter.ip = row_keys[row].clone(),
                HeatmapKind::InstanceDay => filter.instance = row_keys[row].clone(),
                HeatmapKind::WeekdayHour => {}
            }
            cells.push(HeatCell {
                row: row as u32,
                column: column as u32,
                count,
                label,
                filter,
            });
        }
    }
    let max = cells.iter().map(|c| c.count).max().unwrap_or(0);
    let total = cells.iter().map(|c| c.count).sum();
    let now = Timestamp::from_microsecond(now_us).unwrap_or(Timestamp::UNIX_EPOCH);
    let zone = zone_name(tz, now);
    let offset = tz.to_offset(now);
    let title = match (query.kind, query.window) {
        (HeatmapKind::WeekdayHour, _) => "Failed sign-ins by weekday and hour".to_owned(),
        (HeatmapKind::AddressTime, Window::Day) => {
            format!("Failed sign-ins of the top {TOP_ADDRESSES} addresses, by hour")
        }
        (HeatmapKind::AddressTime, _) => {
            format!("Failed sign-ins of the top {TOP_ADDRESSES} addresses, by day")
        }
        (HeatmapKind::InstanceDay, Window::Day) => "Failed sign-ins per instance, by hour".into(),
        (HeatmapKind::InstanceDay, _) => "Failed sign-ins per instance, by day".into(),
    };
    let mut scope_words = match (&query.instance, &query.service) {
        (Some(i), Some(s)) => format!("instance {i} ({s})"),
        (Some(i), None) => format!("instance {i}"),
        (None, Some(s)) => format!("{s} instances"),
        (None, None) => "all instances".to_owned(),
    };
    scope_words.push_str(&format!(" · {total} in all"));
    let subtitle = format!(
        "{}, to {} · times in {zone} (UTC{offset}) · {scope_words}",
        query.window.describe(),
        now.to_zoned(tz.clone()).strftime("%-d %b %Y %H:%M"),
    );
    let mut map = Heatmap {
        title,
        subtitle,
        time_zone: zone,
        rows: layout.rows,
        columns: layout.columns,
        cells,
        max,
        scale: query.scale,
        total,
        width: WIDTH,
        height: 0,
        grid: GridBox {
            left: 0.0,
            top: 0.0,
            width: 0.0,
            height: 0.0,
        },
        svg: String::new(),
    };
    map.svg = render_svg(&mut map, query.theme)?;
    Ok(map)
}

/// Pixel geometry of a heatmap picture.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    left: i32,
    top: i32,
    cell_w: f64,
    cell_h: i32,
    grid_w: i32,
    height: u32,
}

/// The longest row label drawn whole; longer ones (a full IPv6 address, a long instance name)
/// keep their start and end around an ellipsis, and every cell's own label stays whole.
const MAX_LABEL_CHARS: usize = 40;

fn elide(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_owned();
    }
    let head = (max - 1) / 2;
    let tail = max - 1 - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

fn geometry(map: &Heatmap) -> Geometry {
    let longest = map
        .rows
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(3);
    let left = (longest.min(MAX_LABEL_CHARS) as i32 * 7 + 24).clamp(56, 320);
    let top = 64;
    let rows = map.rows.len().max(1) as i32;
    let cell_h = if rows > 16 { 16 } else { 24 };
    let grid_w = WIDTH as i32 - left - 16;
    let cell_w = f64::from(grid_w) / map.columns.len().max(1) as f64;
    let height = (top + rows * cell_h + 84) as u32;
    Geometry {
        left,
        top,
        cell_w,
        cell_h,
        grid_w,
        height,
    }
}

struct Palette {
    background: RGBColor,
    text: RGBColor,
    muted: RGBColor,
    zero: RGBColor,
    ramp: [RGBColor; 4],
}

fn palette(theme: ChartTheme) -> Palette {
    match theme {
        // Low counts pale, high counts dark: contrast grows with the count.
        ChartTheme::Light => Palette {
            background: RGBColor(0xff, 0xff, 0xff),
            text: RGBColor(0x1b, 0x23, 0x30),
            muted: RGBColor(0x4b, 0x55, 0x63),
            zero: RGBColor(0xee, 0xf1, 0xf5),
            ramp: [
                RGBColor(0xfe, 0xe8, 0xc8),
                RGBColor(0xfd, 0xbb, 0x84),
                RGBColor(0xe3, 0x4a, 0x33),
                RGBColor(0x7f, 0x00, 0x00),
            ],
        },
        // On a dark background the scale runs the other way: more is brighter.
        ChartTheme::Dark => Palette {
            background: RGBColor(0x17, 0x1e, 0x27),
            text: RGBColor(0xe6, 0xe9, 0xee),
            muted: RGBColor(0xb0, 0xb9, 0xc6),
            zero: RGBColor(0x24, 0x2d, 0x39),
            ramp: [
                RGBColor(0x4a, 0x2c, 0x1c),
                RGBColor(0x9a, 0x3f, 0x18),
                RGBColor(0xe8, 0x77, 0x2e),
                RGBColor(0xff, 0xd8, 0x8a),
            ],
        },
    }
}

/// The colour of a count on `scale`.
fn shade(p: &Palette, scale: ColourScale, count: u64, max: u64) -> RGBColor {
    if count == 0 || max == 0 {
        return p.zero;
    }
    ramp(p, scale.position(count, max))
}

/// The colour at `t` along the palette's ramp, from the least (0) to the most (1).
fn ramp(p: &Palette, t: f64) -> RGBColor {
    let scaled = t * (p.ramp.len() - 1) as f64;
    let i = (scaled.floor() as usize).min(p.ramp.len() - 2);
    let f = scaled - i as f64;
    let (a, b) = (p.ramp[i], p.ramp[i + 1]);
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn chart_error(e: impl std::fmt::Display) -> Error {
    Error::Chart {
        detail: e.to_string(),
    }
}

fn draw<DB: DrawingBackend>(
    map: &Heatmap,
    theme: ChartTheme,
    root: DrawingArea<DB, plotters::coord::Shift>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let p = palette(theme);
    let g = geometry(map);
    root.fill(&p.background).map_err(chart_error)?;
    // plotters draws text at about 0.8 of the requested size; these come out near 16 and 12 px.
    let title = (FONT, 20).into_font().style(FontStyle::Bold).color(&p.text);
    let small = (FONT, 15).into_font().color(&p.muted);
    let label = (FONT, 15).into_font().color(&p.text);
    root.draw(&Text::new(map.title.clone(), (16, 12), title))
        .map_err(chart_error)?;
    root.draw(&Text::new(map.subtitle.clone(), (16, 38), small.clone()))
        .map_err(chart_error)?;
    if map.rows.is_empty() {
        root.draw(&Text::new(
            "No failed sign-ins from a known address in this window.".to_owned(),
            (g.left, g.top + 4),
            label,
        ))
        .map_err(chart_error)?;
        return root.present().map_err(chart_error);
    }
    let right_aligned = label.clone().pos(Pos::new(HPos::Right, VPos::Center));
    for (row, name) in map.rows.iter().enumerate() {
        let y = g.top + row as i32 * g.cell_h + g.cell_h / 2;
        root.draw(&Text::new(
            elide(name, MAX_LABEL_CHARS),
            (g.left - 8, y),
            right_aligned.clone(),
        ))
        .map_err(chart_error)?;
    }
    let x_of = |column: usize| g.left + (column as f64 * g.cell_w).round() as i32;
    for cell in &map.cells {
        let (x0, x1) = (x_of(cell.column as usize), x_of(cell.column as usize + 1));
        let y0 = g.top + cell.row as i32 * g.cell_h;
        // A 1-pixel gap keeps neighbouring cells apart in either theme.
        root.draw(&Rectangle::new(
            [(x0, y0), (x1 - 1, y0 + g.cell_h - 1)],
            shade(&p, map.scale, cell.count, map.max).filled(),
        ))
        .map_err(chart_error)?;
    }
    // Column labels: as many as fit without overlapping.
    let widest = map
        .columns
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(2) as f64;
    let step = ((widest * 7.0 + 8.0) / g.cell_w).ceil().max(1.0) as usize;
    let centered = small.clone().pos(Pos::new(HPos::Center, VPos::Top));
    let axis_y = g.top + map.rows.len() as i32 * g.cell_h + 6;
    for (column, name) in map.columns.iter().enumerate().step_by(step) {
        let x = g.left + ((column as f64 + 0.5) * g.cell_w).round() as i32;
        root.draw(&Text::new(name.clone(), (x, axis_y), centered.clone()))
            .map_err(chart_error)?;
    }
    // The legend: zero, then the scale from 1 to the largest cell.
    let legend_y = axis_y + 30;
    let left_label = small.clone().pos(Pos::new(HPos::Left, VPos::Center));
    let legend = format!("Failed sign-ins per cell ({}):", map.scale.words());
    // Under 6 px a character at this size: the swatches start just after the words.
    let mut x = g.left + legend.chars().count() as i32 * 6 + 12;
    root.draw(&Text::new(
        legend,
        (g.left, legend_y + 7),
        left_label.clone(),
    ))
    .map_err(chart_error)?;
    root.draw(&Rectangle::new(
        [(x, legend_y), (x + 14, legend_y + 14)],
        p.zero.filled(),
    ))
    .map_err(chart_error)?;
    root.draw(&Text::new(
        "0".to_owned(),
        (x + 18, legend_y + 7),
        left_label.clone(),
    ))
    .map_err(chart_error)?;
    x += 44;
    let steps = 24;
    let bar = 240;
    let top_count = map.max.max(1);
    for i in 0..steps {
        let t = f64::from(i) / f64::from(steps - 1);
        let x0 = x + i * bar / steps;
        let x1 = x + (i + 1) * bar / steps;
        root.draw(&Rectangle::new(
            [(x0, legend_y), (x1, legend_y + 14)],
            ramp(&p, t).filled(),
        ))
        .map_err(chart_error)?;
    }
    let under = small.pos(Pos::new(HPos::Center, VPos::Top));
    root.draw(&Text::new(
        "1".to_owned(),
        (x, legend_y + 18),
        under.clone(),
    ))
    .map_err(chart_error)?;
    if top_count > 1 {
        // The middle of the bar says what the scale does to counts.
        let middle = map.scale.count_at(0.5, top_count);
        if middle > 1 && middle < top_count {
            root.draw(&Text::new(
                middle.to_string(),
                (x + bar / 2, legend_y + 18),
                under.clone(),
            ))
            .map_err(chart_error)?;
        }
        root.draw(&Text::new(
            top_count.to_string(),
            (x + bar, legend_y + 18),
            under,
        ))
        .map_err(chart_error)?;
    }
    root.present().map_err(chart_error)
}

fn render_svg(map: &mut Heatmap, theme: ChartTheme) -> Result<String> {
    let g = geometry(map);
    map.height = g.height;
    map.grid = GridBox {
        left: f64::from(g.left) / f64::from(WIDTH),
        top: f64::from(g.top) / f64::from(g.height),
        width: f64::from(g.grid_w) / f64::from(WIDTH),
        height: f64::from(g.cell_h * map.rows.len() as i32) / f64::from(g.height),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, g.height)).into_drawing_area();
        draw(map, theme, root)?;
    }
    Ok(svg)
}

/// The bundled font for PNG text (SVG text is drawn by the viewer).
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font(
                FONT,
                style,
                include_bytes!("../../assets/DejaVuSans-subset.ttf"),
            )
            .is_err()
            {
                tracing::error!("the bundled chart font did not load");
            }
        }
    });
}

/// The heatmap as a PNG.
pub fn render_png(map: &Heatmap, theme: ChartTheme) -> Result<Vec<u8>> {
    register_font();
    let g = geometry(map);
    let mut pixels = vec![0u8; (WIDTH * g.height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, g.height)).into_drawing_area();
        draw(map, theme, root)?;
    }
    let image = image_png(&pixels, WIDTH, g.height)?;
    Ok(image)
}

fn image_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut out);
    image::ImageEncoder::write_image(encoder, rgb, width, height, image::ColorType::Rgb8)
        .map_err(chart_error)?;
    Ok(out)
}

impl Analytics {
    /// A heatmap of failed sign-ins.
    pub fn heatmap(&self, query: &HeatmapQuery) -> Result<Heatmap> {
        self.heatmap_until(query, self.ctx.micros())
    }

    /// The heatmap of `query`'s window ending at `end_us` instead of now (an incident's
    /// window, in its report).
    pub fn heatmap_until(&self, query: &HeatmapQuery, end_us: i64) -> Result<Heatmap> {
        let fleet: Vec<(String, String)> = self
            .ctx
            .db()
            .instances()
            .all()?
            .into_iter()
            .map(|r| (r.name, r.profile))
            .collect();
        let tz = crate::preferences::time_zone(&self.ctx)?;
        let mut events = self.ctx.events();
        events.refresh()?;
        build(&events, query, &fleet, end_us, &tz)
    }

    /// Write a heatmap picture into `dir`, named by chart and time.
    pub fn export_heatmap_to_dir(
        &self,
        query: &HeatmapQuery,
        format: ImageFormat,
        dir: &std::path::Path,
    ) -> Result<String> {
        let map = self.heatmap(query)?;
        let bytes = match format {
            ImageFormat::Svg => map.svg.into_bytes(),
            ImageFormat::Png => render_png(&map, query.theme)?,
        };
        let stamp = crate::utc(self.ctx.micros()).replace([':', '.'], "-");
        let kind = match query.kind {
            HeatmapKind::WeekdayHour => "weekday-hour",
            HeatmapKind::AddressTime => "addresses",
            HeatmapKind::InstanceDay => "instances",
        };
        let path = dir.join(format!(
            "gatehouse-heatmap-{kind}-{stamp}.{}",
            format.extension()
        ));
        std::fs::write(&path, bytes).map_err(|source| Error::WriteFailed {
            path: path.clone(),
            source,
        })?;
        Ok(path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_scale_keeps_a_few_failures_visible_beside_a_thousand() {
        let (few, max) = (3, 1_068);
        let log = ColourScale::Log.position(few, max);
        let linear = ColourScale::Linear.position(few, max);
        assert!(
            log > 0.15 && linear < 0.01,
            "3 failures sit a fifth of the way up the log ramp ({log:.3}) but vanish on the proportional one ({linear:.3})"
        );
        for scale in [ColourScale::Log, ColourScale::Linear] {
            assert_eq!(
                scale.position(0, max),
                0.0,
                "{scale:?}: none is the zero colour"
            );
            assert_eq!(
                scale.position(max, max),
                1.0,
                "{scale:?}: the busiest cell tops the ramp"
            );
            assert_eq!(
                scale.count_at(1.0, max),
                max,
                "{scale:?}: the legend's end is the busiest cell"
            );
        }
        assert_eq!(
            ColourScale::Log.count_at(0.5, max),
            32,
            "the log legend's middle is near the square root of the busiest cell"
        );
    }

    #[test]
    fn long_row_labels_keep_their_start_and_end() {
        let v6 = "2001:0db8:85a3:0000:0000:8a2e:0370:7334:ffff";
        let short = elide(v6, 20);
        assert_eq!(short.chars().count(), 20, "cut to the width: {short}");
        assert!(
            short.starts_with("2001:0db8") && short.ends_with("7334:ffff") && short.contains('…'),
            "both ends stay readable around an ellipsis: {short}"
        );
        assert_eq!(
            elide("sekha-prod", 20),
            "sekha-prod",
            "a short label is whole"
        );
    }
}
