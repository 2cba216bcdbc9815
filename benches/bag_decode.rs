//! PointCloud2 -> internal cloud decoding and bag reading throughput (MB/s, criterion medians).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gs_livo::bag::{convert, msgs, BagReader, BagWriter, RosMessage, WriterOptions};
use msgs::point_field as pf;

/// An Ouster-like cloud: x y z f32, pad, intensity f32, t u32, ring u16 (32-byte points).
fn ouster_cloud(n: usize) -> msgs::PointCloud2 {
    let mut data = vec![0u8; n * 32];
    for (i, p) in data.chunks_exact_mut(32).enumerate() {
        let v = i as f32 * 0.001;
        p[0..4].copy_from_slice(&v.to_le_bytes());
        p[4..8].copy_from_slice(&(-v).to_le_bytes());
        p[8..12].copy_from_slice(&(v * 0.5).to_le_bytes());
        p[16..20].copy_from_slice(&(i as f32).to_le_bytes());
        p[20..24].copy_from_slice(&((i as u32) * 1000).to_le_bytes());
        p[24..26].copy_from_slice(&((i % 64) as u16).to_le_bytes());
    }
    let f = |name: &str, offset, datatype| msgs::PointField {
        name: name.into(),
        offset,
        datatype,
        count: 1,
    };
    msgs::PointCloud2 {
        header: msgs::Header {
            stamp: 1_700_000_000_000_000_000,
            frame_id: "os".into(),
        },
        height: 1,
        width: n as u32,
        fields: vec![
            f("x", 0, pf::FLOAT32),
            f("y", 4, pf::FLOAT32),
            f("z", 8, pf::FLOAT32),
            f("intensity", 16, pf::FLOAT32),
            f("t", 20, pf::UINT32),
            f("ring", 24, pf::UINT16),
        ],
        is_bigendian: false,
        point_step: 32,
        row_step: 32 * n as u32,
        data,
        is_dense: true,
    }
}

fn bench(c: &mut Criterion) {
    let cloud = ouster_cloud(131_072);
    let bytes = cloud.encode_cdr();
    let mut g = c.benchmark_group("pointcloud2");
    g.throughput(Throughput::Bytes(cloud.data.len() as u64));
    g.bench_function("to_internal_xyz_i_t", |b| {
        b.iter(|| convert::pointcloud_from_msg(&cloud).unwrap())
    });
    let mut xyz_only = cloud.clone();
    xyz_only.fields.truncate(3);
    g.bench_function("to_internal_xyz", |b| {
        b.iter(|| convert::pointcloud_from_msg(&xyz_only).unwrap())
    });
    g.bench_function("cdr_plus_internal", |b| {
        b.iter(|| {
            convert::pointcloud_from_msg(&msgs::PointCloud2::decode_cdr(&bytes).unwrap()).unwrap()
        })
    });
    g.finish();

    let dir = tempfile::tempdir().unwrap();
    for (name, compression) in [("plain", None), ("zstd", Some(mcap::Compression::Zstd))] {
        let path = dir.path().join(name);
        let mut w = BagWriter::create_with(
            &path,
            WriterOptions {
                compression,
                ..Default::default()
            },
        )
        .unwrap();
        let small = ouster_cloud(16_384);
        let mut total = 0u64;
        for k in 0..40u64 {
            w.write("/points", k * 100_000_000, &small).unwrap();
            total += small.encode_cdr().len() as u64;
        }
        w.finish().unwrap();
        let mut g = c.benchmark_group("bag_read");
        g.throughput(Throughput::Bytes(total));
        g.sample_size(20);
        g.bench_function(name, |b| {
            b.iter(|| {
                let bag = BagReader::open(&path).unwrap();
                bag.messages(&[])
                    .unwrap()
                    .map(|m| m.unwrap().data.len())
                    .sum::<usize>()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
