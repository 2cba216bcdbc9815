//! Saving on demand and on shutdown: the trajectory (TUM) from the node's own record of the
//! published odometry, the map (PLY) through the pipeline.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam::channel::{Receiver, Sender};
use nalgebra::Isometry3;

use super::outputs::BackendCommand;
use crate::sensors::{stamp_to_secs, Stamp};

/// File name of the trajectory inside the save folder.
pub const TRAJECTORY_FILE: &str = "trajectory.tum";

/// Writes `stamp tx ty tz qx qy qz qw` lines (TUM format, readable by evo).
pub fn write_tum(path: &Path, poses: &[(Stamp, Isometry3<f64>)]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for (stamp, p) in poses {
        let t = p.translation.vector;
        let q = p.rotation.quaternion();
        writeln!(
            out,
            "{:.9} {:.6} {:.6} {:.6} {:.9} {:.9} {:.9} {:.9}",
            stamp_to_secs(*stamp),
            t.x,
            t.y,
            t.z,
            q.i,
            q.j,
            q.k,
            q.w
        )?;
    }
    out.flush()
}

/// A save in progress: the trajectory is written at once, the map reply arrives later.
pub struct PendingSave {
    pub dir: PathBuf,
    pub written: Vec<PathBuf>,
    pub errors: Vec<String>,
    reply: Option<Receiver<Result<Vec<PathBuf>, String>>>,
}

impl PendingSave {
    /// Creates `dir`, writes the trajectory and asks the pipeline for the map.
    pub fn start(
        dir: &Path,
        trajectory: &[(Stamp, Isometry3<f64>)],
        commands: &Sender<BackendCommand>,
    ) -> Self {
        let mut s = Self {
            dir: dir.to_path_buf(),
            written: Vec::new(),
            errors: Vec::new(),
            reply: None,
        };
        if let Err(e) = std::fs::create_dir_all(dir) {
            s.errors
                .push(format!("cannot create {}: {e}", dir.display()));
            return s;
        }
        let tum = dir.join(TRAJECTORY_FILE);
        match write_tum(&tum, trajectory) {
            Ok(()) => s.written.push(tum),
            Err(e) => s.errors.push(format!("{}: {e}", tum.display())),
        }
        let (tx, rx) = crossbeam::channel::bounded(1);
        let cmd = BackendCommand::SaveMap {
            dir: dir.to_path_buf(),
            reply: tx,
        };
        match commands.send(cmd) {
            Ok(()) => s.reply = Some(rx),
            Err(_) => s
                .errors
                .push("the pipeline has stopped: map not saved".into()),
        }
        s
    }

    /// Polls the pipeline's reply; `true` once the save is complete (either way).
    pub fn poll(&mut self) -> bool {
        let Some(rx) = &self.reply else {
            return true;
        };
        match rx.try_recv() {
            Ok(r) => {
                self.finish(r);
                true
            }
            Err(crossbeam::channel::TryRecvError::Empty) => false,
            Err(crossbeam::channel::TryRecvError::Disconnected) => {
                self.finish(Err("the pipeline dropped the save request".into()));
                true
            }
        }
    }

    /// Blocks up to `timeout` for the map (used at shutdown).
    pub fn wait(&mut self, timeout: Duration) {
        if let Some(rx) = &self.reply {
            let r = rx
                .recv_timeout(timeout)
                .map_err(|_| format!("no map from the pipeline within {timeout:?}"));
            self.finish(r.and_then(|x| x));
        }
    }

    fn finish(&mut self, r: Result<Vec<PathBuf>, String>) {
        self.reply = None;
        match r {
            Ok(files) => self.written.extend(files),
            Err(e) => self.errors.push(e),
        }
    }

    /// One line for logs and service replies.
    pub fn summary(&self) -> String {
        let files: Vec<String> = self
            .written
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if self.errors.is_empty() {
            format!("saved {}", files.join(", "))
        } else {
            format!(
                "saved [{}]; errors: {}",
                files.join(", "),
                self.errors.join("; ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Translation3, UnitQuaternion};

    #[test]
    fn tum_lines_hold_stamp_translation_and_quaternion() {
        let dir = tempfile::tempdir().unwrap();
        let p = Isometry3::from_parts(
            Translation3::new(1.0, -2.0, 0.5),
            UnitQuaternion::from_euler_angles(0.0, 0.0, std::f64::consts::FRAC_PI_2),
        );
        let path = dir.path().join("t.tum");
        write_tum(&path, &[(1_700_000_000_250_000_000, p)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Vec<f64> = text
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(v.len(), 8);
        assert!((v[0] - 1_700_000_000.25).abs() < 1e-6);
        assert_eq!(&v[1..4], &[1.0, -2.0, 0.5]);
        let s = std::f64::consts::FRAC_1_SQRT_2;
        assert!((v[6] - s).abs() < 1e-9 && (v[7] - s).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn save_writes_trajectory_and_collects_the_map_reply() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run1");
        let (tx, rx) = crossbeam::channel::unbounded();
        let traj = vec![
            (1, Isometry3::identity()),
            (2, Isometry3::translation(1.0, 0.0, 0.0)),
        ];
        let mut s = PendingSave::start(&out, &traj, &tx);
        assert!(out.join(TRAJECTORY_FILE).exists());
        assert!(!s.poll(), "waiting for the pipeline");
        let BackendCommand::SaveMap { dir: d, reply } = rx.recv().unwrap();
        assert_eq!(d, out);
        reply.send(Ok(vec![out.join("map.ply")])).unwrap();
        assert!(s.poll());
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(s.written.len(), 2);
        assert!(s.summary().contains("map.ply"));

        // A stopped pipeline is reported, the trajectory still written.
        drop(rx);
        let mut s = PendingSave::start(&dir.path().join("run2"), &traj, &tx);
        s.wait(Duration::from_millis(10));
        assert_eq!(s.written.len(), 1);
        assert!(s.summary().contains("stopped"), "{}", s.summary());
    }
}
