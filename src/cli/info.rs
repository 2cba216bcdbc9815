//! `gs_livo info <bag>`: like `ros2 bag info`, plus rates, gaps and decoded summaries.

use gs_livo::bag::{decode_sensor_message, BagReader, SensorMessage};
use gs_livo::sensors::{stamp_diff_secs, stamp_to_secs, Stamp};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Arguments of `gs_livo info`.
#[derive(clap::Args)]
pub struct Args {
    /// Bag folder (metadata.yaml + .mcap/.db3) or a bare .mcap/.db3 file.
    pub bag: PathBuf,
    /// Skip decoding the first messages of each sensor topic.
    #[arg(long)]
    pub no_decode: bool,
}

#[derive(Default)]
struct TopicStats {
    count: u64,
    first: Option<Stamp>,
    last: Stamp,
    /// Largest gaps between consecutive messages (seconds, at time).
    gaps: Vec<(f64, Stamp)>,
    bytes: u64,
    summary: Option<String>,
}

fn push_gap(gaps: &mut Vec<(f64, Stamp)>, gap: f64, at: Stamp) {
    gaps.push((gap, at));
    gaps.sort_by(|a, b| b.0.total_cmp(&a.0));
    gaps.truncate(3);
}

fn summarize(msg: &SensorMessage) -> Option<String> {
    match msg {
        SensorMessage::Cloud(c) => {
            let (t0, t1) = c.time_span();
            Some(format!(
                "{} points ({} non-finite skipped), time field: {}, span {:.3} s",
                c.len(),
                c.skipped_non_finite,
                if c.time.is_some() { "yes" } else { "no" },
                t1 - t0
            ))
        }
        SensorMessage::Image(i) => Some(format!("{}x{} image", i.width, i.height)),
        SensorMessage::Imu(s) => Some(format!(
            "|gyro| {:.3} rad/s, |accel| {:.3} m/s^2",
            s.gyro.norm(),
            s.accel.norm()
        )),
        SensorMessage::Odometry(o) => Some(format!(
            "{} -> {}, p = [{:.3}, {:.3}, {:.3}]",
            o.header.frame_id,
            o.child_frame_id,
            o.pose.position[0],
            o.pose.position[1],
            o.pose.position[2]
        )),
        SensorMessage::Other => None,
    }
}

/// Adds raw-layout details the decoded types drop (cloud fields, image encoding).
fn detail(type_name: &str, data: &[u8]) -> Option<String> {
    use gs_livo::bag::msgs;
    use gs_livo::bag::RosMessage;
    match type_name {
        "sensor_msgs/msg/PointCloud2" => msgs::PointCloud2::decode_cdr(data).ok().map(|m| {
            let f: Vec<String> = m
                .fields
                .iter()
                .map(|f| format!("{}@{}:{}", f.name, f.offset, f.datatype))
                .collect();
            format!("fields [{}], point_step {}", f.join(" "), m.point_step)
        }),
        "sensor_msgs/msg/Image" => msgs::Image::decode_cdr(data)
            .ok()
            .map(|m| format!("encoding {}", m.encoding)),
        "sensor_msgs/msg/CompressedImage" => msgs::CompressedImage::decode_cdr(data)
            .ok()
            .map(|m| format!("format {}", m.format)),
        _ => None,
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let bag = BagReader::open(&args.bag)?;
    let mut stats: BTreeMap<String, TopicStats> = BTreeMap::new();
    let mut decode_errors = 0usize;
    let mut read_errors = 0u64;
    for m in bag.messages(&[])? {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                read_errors += 1;
                if read_errors <= 10 {
                    tracing::warn!("unreadable message skipped: {e}");
                }
                continue;
            }
        };
        let s = stats.entry(m.topic.clone()).or_default();
        s.count += 1;
        s.bytes += m.data.len() as u64;
        if let Some(_first) = s.first {
            push_gap(&mut s.gaps, stamp_diff_secs(m.log_time, s.last), s.last);
        } else {
            s.first = Some(m.log_time);
        }
        s.last = m.log_time;
        if s.summary.is_none() && !args.no_decode {
            match decode_sensor_message(&m) {
                Ok(d) => {
                    s.summary = summarize(&d).map(|x| match detail(&m.type_name, &m.data) {
                        Some(d) => format!("{x}; {d}"),
                        None => x,
                    })
                }
                Err(e) => {
                    decode_errors += 1;
                    s.summary = Some(format!("decode error: {e}"));
                }
            }
        }
    }
    let start = stats.values().filter_map(|s| s.first).min().unwrap_or(0);
    let end = stats.values().map(|s| s.last).max().unwrap_or(0);
    let total: u64 = stats.values().map(|s| s.count).sum();
    println!("Bag:        {}", args.bag.display());
    println!("Duration:   {:.3} s", stamp_diff_secs(end, start).max(0.0));
    println!("Start:      {:.9} ({start} ns)", stamp_to_secs(start));
    println!("End:        {:.9} ({end} ns)", stamp_to_secs(end));
    println!("Messages:   {total}");
    let damage = bag.damage();
    if !damage.is_empty() {
        let what = if damage.truncated {
            "TRUNCATED"
        } else {
            "damaged"
        };
        println!("Damage:     {what} (everything readable is counted above)");
        for line in damage.lines() {
            println!("  {line}");
        }
    }
    if read_errors > 0 {
        println!("Unreadable: {read_errors} message(s) skipped");
    }
    println!("Topics:");
    for t in bag.topics() {
        let s = stats.get(&t.name);
        let n = s.map_or(0, |s| s.count);
        let span = s
            .and_then(|s| s.first.map(|f| stamp_diff_secs(s.last, f)))
            .unwrap_or(0.0);
        let rate = if span > 0.0 {
            (n.saturating_sub(1)) as f64 / span
        } else {
            0.0
        };
        println!(
            "  {}  [{}]  count {}  rate {:.2} Hz",
            t.name, t.type_name, n, rate
        );
        if let Some(s) = s {
            println!(
                "      bytes {}, first {:.3} s, last {:.3} s",
                s.bytes,
                stamp_diff_secs(s.first.unwrap_or(start), start),
                stamp_diff_secs(s.last, start)
            );
            if !s.gaps.is_empty() {
                let g: Vec<String> = s
                    .gaps
                    .iter()
                    .map(|(g, at)| format!("{g:.3} s at +{:.3} s", stamp_diff_secs(*at, start)))
                    .collect();
                println!("      largest gaps: {}", g.join(", "));
            }
            if let Some(sum) = &s.summary {
                println!("      first message: {sum}");
            }
        }
    }
    if decode_errors > 0 {
        println!("{decode_errors} topic(s) had messages that failed to decode (see above)");
    }
    Ok(())
}
