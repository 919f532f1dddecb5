//! Splits a run into shards (`harness run --shard K/N`): N deterministic parts of the selected
//! manifest entries, balanced by each entry's cost when a previous run gives it (`--shard-costs
//! DIR`), by entry count otherwise. A manifest entry is never split, and every configuration of it
//! runs in its shard, so the interleaving of configurations is the same as in an unsharded run.
//! `harness merge` (module `merge`) puts the shards' run directories back together.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// `K/N`: the K-th (from 1) of N shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// From 1 to `count`.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl std::str::FromStr for ShardSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard {s:?}: expected K/N with 1 <= K <= N, e.g. 2/3");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(ShardSpec { index, count })
    }
}

impl std::fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a shard's `run.json` records of its place in the whole run (checked by `harness merge`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard.
    #[serde(flatten)]
    pub spec: ShardSpec,
    /// The manifest entries of this shard, in run order.
    pub entries: Vec<String>,
    /// The manifest entries of the whole run, in run order (every shard has the same list).
    pub all_entries: Vec<String>,
}

/// Splits `entries` into `count` parts: greedy on cost, the costliest entry first, each into the
/// part with the smallest total so far (ties: the lower part). An entry without a known cost counts
/// as the mean of the known ones (1 when none is known, which balances by count). Within a part the
/// entries keep their order in `entries`. Deterministic: the same input gives the same parts.
pub fn partition(
    entries: &[String],
    costs: &BTreeMap<String, f64>,
    count: u32,
) -> Vec<Vec<String>> {
    let count = count.max(1) as usize;
    let known: Vec<f64> = entries
        .iter()
        .filter_map(|e| costs.get(e).copied())
        .filter(|c| c.is_finite() && *c > 0.0)
        .collect();
    let fallback = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    let cost = |e: &String| {
        costs
            .get(e)
            .copied()
            .filter(|c| c.is_finite() && *c > 0.0)
            .unwrap_or(fallback)
    };
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // Costliest first; equal costs in input order (stable sort).
    order.sort_by(|&a, &b| cost(&entries[b]).total_cmp(&cost(&entries[a])));
    let mut totals = vec![0.0f64; count];
    let mut part_of = vec![0usize; entries.len()];
    for i in order {
        let (part, _) = totals
            .iter()
            .enumerate()
            .min_by(|(_, x), (_, y)| x.total_cmp(y))
            .expect("count >= 1");
        totals[part] += cost(&entries[i]);
        part_of[i] = part;
    }
    let mut parts = vec![Vec::new(); count];
    for (i, e) in entries.iter().enumerate() {
        parts[part_of[i]].push(e.clone());
    }
    parts
}

/// The shard `spec` of `entries`.
pub fn shard_of(entries: &[String], costs: &BTreeMap<String, f64>, spec: ShardSpec) -> Shard {
    let mut parts = partition(entries, costs, spec.count);
    Shard {
        spec,
        entries: std::mem::take(&mut parts[spec.index as usize - 1]),
        all_entries: entries.to_vec(),
    }
}

/// Each manifest entry's cost in an earlier run directory: the wall time (pyperf's `duration` of
/// each worker process) of all its benchmarks' processes in every configuration.
pub fn costs_from_run(dir: &Path) -> Result<BTreeMap<String, f64>> {
    let run = rundir::RunDir::open(dir)?;
    let info: rundir::RunInfo = run.load_info()?;
    let entry_of: BTreeMap<&str, &str> = info
        .benchmarks
        .iter()
        .map(|b| (b.name.as_str(), b.manifest_entry()))
        .collect();
    let mut costs = BTreeMap::new();
    for c in &info.configs {
        let path = run.pyperf(&c.name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let suite: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        for b in suite["benchmarks"].as_array().into_iter().flatten() {
            let name = b["metadata"]["name"].as_str().unwrap_or("");
            let Some(entry) = entry_of.get(name) else {
                continue;
            };
            let seconds: f64 = b["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["metadata"]["duration"].as_f64())
                .sum();
            *costs.entry(entry.to_string()).or_insert(0.0) += seconds;
        }
    }
    if costs.is_empty() {
        bail!(
            "--shard-costs {}: no worker durations in its pyperf files",
            dir.display()
        );
    }
    Ok(costs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("b{i}")).collect()
    }

    #[test]
    fn spec_parses_k_of_n_and_refuses_the_rest() {
        assert_eq!("2/3".parse(), Ok(ShardSpec { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", ""] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
        assert_eq!(ShardSpec { index: 1, count: 2 }.to_string(), "1/2");
    }

    #[test]
    fn without_costs_the_parts_differ_by_at_most_one_entry_and_cover_everything_once() {
        let all = names(14);
        let parts = partition(&all, &BTreeMap::new(), 3);
        let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
        assert_eq!(sizes, [5, 5, 4]);
        let mut seen: Vec<String> = parts.concat();
        seen.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(seen, want);
        // Order within a part is the run's order.
        for p in &parts {
            let pos: Vec<usize> = p
                .iter()
                .map(|e| all.iter().position(|a| a == e).unwrap())
                .collect();
            assert!(pos.windows(2).all(|w| w[0] < w[1]), "{p:?}");
        }
        assert_eq!(partition(&all, &BTreeMap::new(), 3), parts, "deterministic");
    }

    #[test]
    fn costs_balance_the_parts() {
        let all = names(5);
        let costs = BTreeMap::from([
            ("b0".to_string(), 10.0),
            ("b1".to_string(), 1.0),
            ("b2".to_string(), 4.0),
            ("b3".to_string(), 5.0),
            ("b4".to_string(), 1.0),
        ]);
        // Costliest first: b0 (10) | b3 (5), b2 (4), b1 (1) | then b4 (1) on the tie, to the lower
        // part: totals 11 and 10.
        let parts = partition(&all, &costs, 2);
        let want: Vec<Vec<String>> = vec![
            vec!["b0".into(), "b4".into()],
            vec!["b1".into(), "b2".into(), "b3".into()],
        ];
        assert_eq!(parts, want);
        // An unknown cost counts as the mean of the known ones.
        let some = BTreeMap::from([("b0".to_string(), 9.0), ("b1".to_string(), 3.0)]);
        let parts = partition(&names(3), &some, 2);
        assert_eq!(
            parts,
            vec![
                vec!["b0".to_string()],
                vec!["b1".to_string(), "b2".to_string()]
            ]
        );
    }

    #[test]
    fn more_shards_than_entries_leaves_some_empty() {
        let parts = partition(&names(2), &BTreeMap::new(), 3);
        assert_eq!(parts.iter().filter(|p| p.is_empty()).count(), 1);
        let s = shard_of(
            &names(2),
            &BTreeMap::new(),
            ShardSpec { index: 3, count: 3 },
        );
        assert!(s.entries.is_empty());
        assert_eq!(s.all_entries, names(2));
    }
}
