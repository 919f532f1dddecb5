//! Calibrates loops once per task on the untraced interpreter (pyperf's `--calibrate-loops`),
//! discovering the tasks of scripts that run several (`--worker-task=K` until a worker produces
//! nothing). The loops are then used by every configuration.

use crate::runner::{Interrupted, Runner};
use crate::suite::Benchmark;
use crate::worker::{self, Outcome, PyperfJob, WorkerSpec};
use anyhow::Result;
use rundir::{BenchmarkInfo, FailureKind};

/// Scripts with more tasks than this are assumed to be broken (the largest, bm_base64, has 11).
const MAX_TASKS: u32 = 64;

impl Runner<'_> {
    /// Calibrates loops for every manifest benchmark not yet calibrated, discovering its tasks
    /// (`--worker-task=K` until a worker produces nothing), and saves `run.json` after each.
    pub fn calibrate_all(&mut self) -> Result<()> {
        let todo: Vec<Benchmark> = self
            .manifest
            .iter()
            .filter(|b| !self.info.request.calibrated.contains(&b.name))
            .cloned()
            .collect();
        for (i, bench) in todo.iter().enumerate() {
            self.check_interrupt()?;
            crate::system::ensure_free_space(&self.dir.root)?;
            eprintln!(
                "harness: calibrating {} ({}/{})",
                bench.name,
                i + 1,
                todo.len()
            );
            let entries = self.calibrate(bench)?;
            self.info
                .benchmarks
                .retain(|b| b.manifest_entry() != bench.name);
            self.info.benchmarks.extend(entries);
            self.info.request.calibrated.push(bench.name.clone());
            self.dir.save_info(&self.info)?;
        }
        Ok(())
    }

    fn calibrate(&self, bench: &Benchmark) -> Result<Vec<BenchmarkInfo>> {
        let mut entries: Vec<BenchmarkInfo> = Vec::new();
        for task in 0..MAX_TASKS {
            let out = self
                .dir
                .work()
                .join(format!("calibrate-{}-{task}.json", bench.name));
            let _ = std::fs::remove_file(&out);
            let job = PyperfJob::CalibrateLoops {
                min_time: self.info.settings.min_time,
                warmups: self.info.settings.warmups,
            };
            let spec = WorkerSpec {
                python: self.python.clone(),
                args: worker::pyperf_args(
                    bench,
                    task,
                    &job,
                    &out,
                    self.info.settings.timer,
                    &self.work,
                ),
                env: self.base_env.clone(),
                cwd: self.dir.work(),
                timeout: self.timeout(),
                stdout: None,
            };
            let (kind, reason, tail) = match worker::run(&spec, self.interrupted)? {
                Outcome::Interrupted => return Err(Interrupted.into()),
                Outcome::Exited { status, .. } if status.success() && !out.exists() => break,
                Outcome::Exited { status, .. } if status.success() => {
                    let (name, loops) = rundir::pyperf::read_calibration(&out)?;
                    let _ = std::fs::remove_file(&out);
                    entries.push(BenchmarkInfo {
                        name,
                        tags: bench.tags.clone(),
                        micro: Some(bench.micro()),
                        loops: Some(loops),
                        task: Some(task),
                        manifest_name: Some(bench.name.clone()),
                    });
                    continue;
                }
                Outcome::Exited {
                    status,
                    stderr_tail,
                    ..
                } => (
                    FailureKind::Failed,
                    format!("calibration worker failed ({status})"),
                    stderr_tail,
                ),
                Outcome::TimedOut { stderr_tail } => (
                    FailureKind::Timeout,
                    format!(
                        "calibration worker timed out after {} s",
                        self.timeout().as_secs()
                    ),
                    stderr_tail,
                ),
            };
            // A benchmark that cannot run untraced cannot be compared: it is failed everywhere.
            let name = if task == 0 {
                bench.name.clone()
            } else {
                format!("{} (task {task})", bench.name)
            };
            self.fail_everywhere(&name, kind, &reason, &tail)?;
            break;
        }
        if entries.len() == 1 {
            entries[0].task = None;
        }
        Ok(entries)
    }
}
