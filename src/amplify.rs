//! Delay amplification: how an injected delay multiplies across the round trips of each logical
//! unit (connection set-up, transaction, single statement, connection), and whether the delay is
//! visible in the traffic at all.
//!
//! Two bases, stated in the report:
//! - `baseline`: units of the delayed capture are matched to a baseline capture's units by kind
//!   and request shape (the hash of their statement fingerprints in order), the n-th occurrence
//!   with the n-th occurrence, so the same transaction is compared with itself. Added time is
//!   measured: duration − baseline duration. Without a given delay, the delay is inferred as the
//!   median added time per round trip.
//! - `model`: only the delay D is known. Each round trip that crosses the delayed path pays D once,
//!   so a unit of N round trips carries N × D of it; the verdict checks that no unit was faster
//!   than that allows.
//!
//! Memory: baseline durations are held per unit up to [`MAX_BASELINE_UNITS`]; the delayed
//! capture's units are streamed from the analyzer's spill, twice (summary, then the report list).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::analysis::{Spill, UnitJson};

/// Baseline units kept for matching; beyond this they are counted as dropped.
pub const MAX_BASELINE_UNITS: usize = 500_000;
/// Per-round-trip samples kept for the verdict (the first ones).
const MAX_SAMPLES: usize = 200_000;
/// Units listed in the text report's "most amplified" list.
pub const TOP_UNITS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DelaySource {
    /// `--delay` on the command line.
    Given,
    /// Recorded by `experiment` (or `inject`) when it applied the delay.
    Recorded,
    /// Measured from a baseline comparison.
    Inferred,
    None,
}

/// A delay the caller knows about, per round trip (what one request/response turn pays).
#[derive(Clone, Debug, PartialEq)]
pub struct KnownDelay {
    pub per_round_trip_us: u64,
    pub source: DelaySource,
    /// Where the capture point sits relative to the delay; a generic statement when None.
    pub assumption: Option<String>,
}

/// The default statement of where the capture sits, when the caller gave none.
pub const ASSUMPTION_EGRESS: &str = "the capture sees each delayed packet after its delay (netem \
on the egress of the captured interface, e.g. lo, or a capture on the client side of a delaying \
proxy), so a request's response time in the capture is server time plus one delay per delayed \
direction, and every round trip of a unit that crosses the delayed path pays the delay again";
pub const ASSUMPTION_NONE: &str = "no injected delay is known for this capture: times are as seen \
from the capture point, so a response time is server time plus the network beyond the tap";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Added time measured against a baseline capture.
    Baseline,
    /// Added time attributed from the known delay and the round-trip counts.
    Model,
    /// Neither a delay nor a baseline: units only.
    None,
}

/// Baseline durations by kind, then shape, consumed in order (the next index per shape).
#[derive(Clone, Debug, Default)]
pub struct BaselineUnits {
    by_key: HashMap<String, HashMap<String, (Vec<i64>, usize)>>,
    pub units: u64,
    pub dropped: u64,
}

impl BaselineUnits {
    /// Reads the baseline analyzer's units.
    pub fn collect(spill: &mut Spill) -> anyhow::Result<BaselineUnits> {
        let mut b = BaselineUnits::default();
        for_each_unit(spill, |u| {
            b.add(&u);
            Ok(())
        })?;
        Ok(b)
    }

    pub fn add(&mut self, u: &UnitJson) {
        self.units += 1;
        if self.units > MAX_BASELINE_UNITS as u64 {
            self.dropped += 1;
            return;
        }
        self.by_key
            .entry(u.kind.clone())
            .or_default()
            .entry(u.shape.clone())
            .or_default()
            .0
            .push(u.duration_us);
    }

    /// The next baseline occurrence of the same unit, if any is left.
    fn take(&mut self, u: &UnitJson) -> Option<i64> {
        let (durations, next) = self.by_key.get_mut(&u.kind)?.get_mut(&u.shape)?;
        let d = durations.get(*next).copied()?;
        *next += 1;
        Some(d)
    }

    fn rewind(&mut self) {
        for (_, next) in self.by_key.values_mut().flat_map(|m| m.values_mut()) {
            *next = 0;
        }
    }
}

fn for_each_unit(
    spill: &mut Spill,
    mut f: impl FnMut(UnitJson) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    spill.for_each_object(|bytes| f(serde_json::from_slice(bytes)?))
}

/// One unit with its comparison.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AmplifiedUnit {
    #[serde(flatten)]
    pub unit: UnitJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_duration_us: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_us: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_per_round_trip_us: Option<i64>,
    /// Added time divided by the injected delay: how many times the delay was paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
}

/// Totals per unit kind.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct KindSummary {
    pub units: u64,
    /// Units with a baseline counterpart (baseline basis only).
    pub matched: u64,
    pub round_trips: u64,
    pub duration_us: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_duration_us: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_us: Option<i64>,
    /// Added time over the round trips of the units that have it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_per_round_trip_us: Option<i64>,
    /// Mean factor (added time / delay) of the units that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_factor: Option<f64>,
    /// Round trips of the units that were compared (matched, or all under the model basis).
    #[serde(skip)]
    compared_round_trips: u64,
    #[serde(skip)]
    factor_sum: f64,
    #[serde(skip)]
    factor_count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictStatus {
    /// About one delay per round trip was added.
    Visible,
    /// Clearly more than one delay per round trip (both directions delayed, or extra waits).
    Larger,
    /// Less than the delay per round trip: part of the traffic avoids the delayed path.
    Partial,
    /// The delay does not show in the traffic: the rule does nothing to these round trips.
    NotVisible,
    /// Without a baseline: every compared round trip took at least the delay.
    Consistent,
    /// Nothing to compare.
    Unknown,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Verdict {
    pub status: VerdictStatus,
    /// Whether the injected delay is seen in the traffic.
    pub delay_visible: bool,
    pub expected_per_round_trip_us: Option<u64>,
    /// Median over the compared units of added time per round trip (baseline basis) or of
    /// duration per round trip (model basis).
    pub observed_per_round_trip_us: Option<i64>,
    /// observed / expected.
    pub ratio: Option<f64>,
    pub units_compared: u64,
    pub reason: String,
}

/// The whole comparison, without the per-unit list (streamed by [`Amplification::write_units`]).
#[derive(Clone, Debug)]
pub struct Amplification {
    pub injected_delay_us: Option<u64>,
    pub delay_source: DelaySource,
    pub assumption: String,
    pub basis: Basis,
    pub baseline_file: Option<String>,
    pub baseline_units: u64,
    pub baseline_dropped: u64,
    pub by_kind: BTreeMap<String, KindSummary>,
    pub verdict: Verdict,
    /// The most amplified units (largest added time first).
    pub top: Vec<AmplifiedUnit>,
    baseline: Option<BaselineUnits>,
}

/// Kinds whose round trips are timed back to back by the client, so that their duration per
/// round trip measures the delay; a connection's duration also holds the client's idle time.
fn is_compared_kind(kind: &str) -> bool {
    matches!(kind, "setup" | "transaction" | "statement")
}

fn enrich(unit: UnitJson, basis: Basis, base: Option<i64>, delay_us: Option<u64>) -> AmplifiedUnit {
    let rt = unit.round_trips;
    let (added, per_rt) = match (basis, base) {
        (Basis::Baseline, Some(b)) => {
            let added = unit.duration_us - b;
            (Some(added), (rt > 0).then(|| added / rt as i64))
        }
        (Basis::Model, _) => (delay_us.map(|d| (rt * d) as i64), None),
        _ => (None, None),
    };
    let factor = match (added, delay_us) {
        (Some(a), Some(d)) if d > 0 => Some(round2(a as f64 / d as f64)),
        _ => None,
    };
    AmplifiedUnit {
        unit,
        baseline_duration_us: base,
        added_us: added,
        added_per_round_trip_us: per_rt,
        factor,
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn median(v: &mut [i64]) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

impl Amplification {
    /// Compares the delayed capture's units (and optionally a baseline's) under the known delay.
    /// `totals`: units, round trips and duration per kind, as summed while the units were
    /// written; with neither a baseline nor a delay they are all there is to say, and the units
    /// are not read back.
    pub fn compute(
        units: &mut Spill,
        totals: &BTreeMap<String, KindSummary>,
        baseline: Option<(String, BaselineUnits)>,
        known: Option<&KnownDelay>,
    ) -> anyhow::Result<Amplification> {
        let basis = match (&baseline, known) {
            (Some(_), _) => Basis::Baseline,
            (None, Some(_)) => Basis::Model,
            (None, None) => Basis::None,
        };
        if basis == Basis::None {
            return Ok(Amplification {
                injected_delay_us: None,
                delay_source: DelaySource::None,
                assumption: ASSUMPTION_NONE.to_string(),
                basis,
                baseline_file: None,
                baseline_units: 0,
                baseline_dropped: 0,
                by_kind: totals.clone(),
                verdict: verdict(basis, DelaySource::None, None, None, &[], 0),
                top: Vec::new(),
                baseline: None,
            });
        }
        let (baseline_file, mut baseline) = match baseline {
            Some((f, b)) => (Some(f), Some(b)),
            None => (None, None),
        };

        // Pass 1: match, collect per-round-trip samples (to infer the delay when not given).
        let mut samples: Vec<i64> = Vec::new();
        let mut compared = 0u64;
        for_each_unit(units, |u| {
            if !is_compared_kind(&u.kind) || u.round_trips == 0 {
                let _ = baseline.as_mut().and_then(|b| b.take(&u));
                return Ok(());
            }
            let sample = match baseline.as_mut() {
                Some(b) => b
                    .take(&u)
                    .map(|d| (u.duration_us - d) / u.round_trips as i64),
                None => Some(u.duration_us / u.round_trips as i64),
            };
            if let Some(s) = sample {
                compared += 1;
                if samples.len() < MAX_SAMPLES {
                    samples.push(s);
                }
            }
            Ok(())
        })?;
        let observed = median(&mut samples);

        let (delay_us, source, assumption) = match known {
            Some(k) => (
                Some(k.per_round_trip_us),
                k.source,
                k.assumption
                    .clone()
                    .unwrap_or_else(|| ASSUMPTION_EGRESS.to_string()),
            ),
            None => match (basis, observed) {
                (Basis::Baseline, Some(o)) if o > 0 => (
                    Some(o.unsigned_abs()),
                    DelaySource::Inferred,
                    format!(
                        "the delay was inferred as the median added time per round trip against \
                         the baseline; {ASSUMPTION_EGRESS}"
                    ),
                ),
                (Basis::Baseline, _) => (
                    None,
                    DelaySource::None,
                    "compared with the baseline; no added time per round trip was found".into(),
                ),
                _ => (None, DelaySource::None, ASSUMPTION_NONE.to_string()),
            },
        };
        let verdict = verdict(basis, source, delay_us, observed, &samples, compared);

        // Pass 2: per-kind totals and the most amplified units.
        if let Some(b) = baseline.as_mut() {
            b.rewind();
        }
        let mut by_kind: BTreeMap<String, KindSummary> = BTreeMap::new();
        let mut top: Vec<AmplifiedUnit> = Vec::new();
        for_each_unit(units, |u| {
            let base = baseline.as_mut().and_then(|b| b.take(&u));
            let a = enrich(u, basis, base, delay_us);
            let k = by_kind.entry(a.unit.kind.clone()).or_default();
            k.units += 1;
            k.round_trips += a.unit.round_trips;
            k.duration_us += a.unit.duration_us;
            if let Some(b) = a.baseline_duration_us {
                k.matched += 1;
                *k.baseline_duration_us.get_or_insert(0) += b;
            }
            if let Some(added) = a.added_us {
                *k.added_us.get_or_insert(0) += added;
                k.compared_round_trips += a.unit.round_trips;
            }
            if let Some(f) = a.factor {
                k.factor_sum += f;
                k.factor_count += 1;
            }
            if a.added_us.is_some_and(|x| x > 0) {
                let slot = top.partition_point(|t| t.added_us >= a.added_us);
                if slot < TOP_UNITS {
                    top.insert(slot, a);
                    top.truncate(TOP_UNITS);
                }
            }
            Ok(())
        })?;
        for k in by_kind.values_mut() {
            if let Some(added) = k.added_us {
                if basis == Basis::Baseline && k.compared_round_trips > 0 {
                    k.added_per_round_trip_us = Some(added / k.compared_round_trips as i64);
                }
            }
            if k.factor_count > 0 {
                k.mean_factor = Some(round2(k.factor_sum / k.factor_count as f64));
            }
        }
        let (baseline_units, baseline_dropped) =
            baseline.as_ref().map_or((0, 0), |b| (b.units, b.dropped));
        Ok(Amplification {
            injected_delay_us: delay_us,
            delay_source: source,
            assumption,
            basis,
            baseline_file,
            baseline_units,
            baseline_dropped,
            by_kind,
            verdict,
            top,
            baseline,
        })
    }

    /// Writes the `amplification` object of `wirelag.report/v1`, streaming the unit list.
    pub fn write_json(
        &mut self,
        units: &mut Spill,
        out: &mut dyn crate::report::ReportOut,
    ) -> anyhow::Result<()> {
        #[derive(Serialize)]
        struct Head<'a> {
            injected_delay_us: Option<u64>,
            delay_source: DelaySource,
            assumption: &'a str,
            basis: Basis,
            #[serde(skip_serializing_if = "Option::is_none")]
            baseline: Option<BaselineJson<'a>>,
            verdict: &'a Verdict,
            by_kind: &'a BTreeMap<String, KindSummary>,
        }
        #[derive(Serialize)]
        struct BaselineJson<'a> {
            file: &'a str,
            units: u64,
            dropped: u64,
        }
        let head = Head {
            injected_delay_us: self.injected_delay_us,
            delay_source: self.delay_source,
            assumption: &self.assumption,
            basis: self.basis,
            baseline: self.baseline_file.as_deref().map(|file| BaselineJson {
                file,
                units: self.baseline_units,
                dropped: self.baseline_dropped,
            }),
            verdict: &self.verdict,
            by_kind: &self.by_kind,
        };
        let mut head_bytes = serde_json::to_vec(&head)?;
        // Reopen the object to append the streamed unit list.
        head_bytes.pop();
        out.write_all(&head_bytes)?;
        out.write_all(b",\"units\":")?;
        if self.basis == Basis::None {
            // Nothing to add to the units: they go out as they were written.
            units.write_array(out)?;
            out.write_all(b"}")?;
            return Ok(());
        }
        out.write_all(b"[")?;
        if let Some(b) = self.baseline.as_mut() {
            b.rewind();
        }
        let (basis, delay) = (self.basis, self.injected_delay_us);
        let baseline = &mut self.baseline;
        let mut first = true;
        for_each_unit(units, |u| {
            let base = baseline.as_mut().and_then(|b| b.take(&u));
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            serde_json::to_writer(&mut *out, &enrich(u, basis, base, delay))?;
            Ok(())
        })?;
        out.write_all(b"]}")?;
        Ok(())
    }
}

fn verdict(
    basis: Basis,
    source: DelaySource,
    delay_us: Option<u64>,
    observed: Option<i64>,
    samples: &[i64],
    compared: u64,
) -> Verdict {
    let mk = |status, visible, reason: String| Verdict {
        status,
        delay_visible: visible,
        expected_per_round_trip_us: delay_us,
        observed_per_round_trip_us: observed,
        ratio: match (observed, delay_us) {
            (Some(o), Some(d)) if d > 0 => Some(round2(o as f64 / d as f64)),
            _ => None,
        },
        units_compared: compared,
        reason,
    };
    if let (Basis::Baseline, None, Some(o)) = (basis, delay_us, observed) {
        return mk(
            VerdictStatus::NotVisible,
            false,
            format!(
                "the capture adds no time per round trip over the baseline (median {}): no delay \
                 is visible",
                fmt_ms(o)
            ),
        );
    }
    let (Some(d), Some(o)) = (delay_us, observed) else {
        let why = match (basis, delay_us) {
            (Basis::None, _) => "no injected delay is known and there is no baseline to compare",
            (_, None) => "no delay is known and none could be inferred from the baseline",
            _ => "no setup, transaction or statement unit with round trips could be compared",
        };
        return mk(VerdictStatus::Unknown, false, why.into());
    };
    let df = d as f64;
    match basis {
        Basis::Baseline if source == DelaySource::Inferred => {
            // The delay is the median itself: check that it is consistent and not noise.
            let near = samples
                .iter()
                .filter(|s| ((**s as f64) - df).abs() <= 0.25 * df + 500.0)
                .count();
            let share = near as f64 / samples.len().max(1) as f64;
            if d >= 500 && share >= 0.6 {
                mk(
                    VerdictStatus::Visible,
                    true,
                    format!(
                        "{:.0}% of the compared units added {} ± 25% per round trip over the \
                         baseline: a delay is on their path",
                        share * 100.0,
                        fmt_ms(d as i64)
                    ),
                )
            } else {
                mk(
                    VerdictStatus::NotVisible,
                    false,
                    format!(
                        "no consistent added time per round trip (median {}, {:.0}% of units \
                         near it)",
                        fmt_ms(o),
                        share * 100.0
                    ),
                )
            }
        }
        Basis::Baseline => {
            let ratio = o as f64 / df;
            let (status, visible, what) = if ratio < 0.2 {
                (
                    VerdictStatus::NotVisible,
                    false,
                    "the traffic does not show the delay: the rule may be installed but it does not \
                     touch these round trips (wrong interface, port or direction?)",
                )
            } else if ratio < 0.8 {
                (
                    VerdictStatus::Partial,
                    true,
                    "less than one delay per round trip: part of the round trips avoid the \
                     delayed path",
                )
            } else if ratio <= 1.25 {
                (
                    VerdictStatus::Visible,
                    true,
                    "about one delay per round trip, as injected",
                )
            } else {
                (
                    VerdictStatus::Larger,
                    true,
                    "more than one delay per round trip: both directions are delayed, or the \
                     delay adds waits of its own",
                )
            };
            mk(
                status,
                visible,
                format!(
                    "median added time per round trip {} against an injected {} ({:.2}x): {what}",
                    fmt_ms(o),
                    fmt_ms(d as i64),
                    ratio
                ),
            )
        }
        _ => {
            // Model basis: every compared round trip must have lasted at least the delay.
            let floor = 0.95 * df;
            let below = samples.iter().filter(|s| (**s as f64) < floor).count();
            let share_below = below as f64 / samples.len().max(1) as f64;
            if share_below <= 0.05 {
                mk(
                    VerdictStatus::Consistent,
                    true,
                    format!(
                        "every compared unit took at least {} per round trip, as the injected \
                         delay requires ({} of {} below); without a baseline the added time is \
                         attributed from the model, not measured",
                        fmt_ms(d as i64),
                        below,
                        samples.len()
                    ),
                )
            } else {
                mk(
                    VerdictStatus::NotVisible,
                    false,
                    format!(
                        "{:.0}% of the compared units took less than {} per round trip, which a \
                         delay of {} on their path would not allow",
                        share_below * 100.0,
                        fmt_ms(d as i64),
                        fmt_ms(d as i64)
                    ),
                )
            }
        }
    }
}

/// Milliseconds with three decimals (seconds from 10 s on), for reasons and the text report.
pub fn fmt_ms(us: i64) -> String {
    if us.unsigned_abs() >= 10_000_000 {
        format!("{:.3} s", us as f64 / 1e6)
    } else {
        format!("{:.3} ms", us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(kind: &str, shape: &str, rt: u64, dur_ms: i64) -> UnitJson {
        UnitJson {
            stream: 0,
            kind: kind.into(),
            first_frame: 1,
            last_frame: 2,
            statements: rt,
            round_trips: rt,
            duration_us: dur_ms * 1000,
            shape: shape.into(),
            fingerprint: None,
        }
    }

    fn spill(units: &[UnitJson]) -> Spill {
        let mut s = Spill::new(256).unwrap();
        for u in units {
            s.push(u);
        }
        s
    }

    fn known(ms: u64) -> KnownDelay {
        KnownDelay {
            per_round_trip_us: ms * 1000,
            source: DelaySource::Given,
            assumption: None,
        }
    }

    #[test]
    fn baseline_matching_by_shape_in_order_measures_added_time() {
        let base = [
            unit("transaction", "aa", 7, 12),
            unit("statement", "bb", 1, 1),
            unit("transaction", "aa", 7, 14),
            unit("connection", "cc", 20, 500),
        ];
        let delayed = [
            unit("statement", "bb", 1, 21),
            unit("transaction", "aa", 7, 152),
            unit("transaction", "aa", 7, 156),
            unit("transaction", "zz", 3, 61),
            unit("connection", "cc", 20, 900),
        ];
        let mut b = BaselineUnits::default();
        for u in &base {
            b.add(u);
        }
        let mut units = spill(&delayed);
        let mut a = Amplification::compute(
            &mut units,
            &BTreeMap::new(),
            Some(("b.pcap".into(), b)),
            Some(&known(20)),
        )
        .unwrap();
        assert_eq!(a.basis, Basis::Baseline);
        let t = &a.by_kind["transaction"];
        assert_eq!((t.units, t.matched, t.round_trips), (3, 2, 17));
        assert_eq!(t.added_us, Some(282_000));
        assert_eq!(t.added_per_round_trip_us, Some(282_000 / 14));
        assert_eq!(a.verdict.status, VerdictStatus::Visible);
        assert_eq!(a.verdict.units_compared, 3);
        assert_eq!(a.top.first().unwrap().added_us, Some(400_000));

        let mut out = Vec::new();
        a.write_json(&mut units, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["delay_source"], "given");
        assert_eq!(v["units"][1]["baseline_duration_us"], 12_000);
        assert_eq!(v["units"][1]["added_us"], 140_000);
        assert_eq!(v["units"][1]["added_per_round_trip_us"], 20_000);
        assert_eq!(v["units"][1]["factor"], 7.0);
        assert_eq!(v["units"][2]["baseline_duration_us"], 14_000);
        assert!(v["units"][3].get("added_us").is_none(), "unmatched");
        assert_eq!(v["verdict"]["status"], "visible");
    }

    #[test]
    fn a_rule_that_does_nothing_is_caught() {
        let base = [
            unit("statement", "s", 1, 2),
            unit("transaction", "t", 5, 10),
        ];
        let delayed = [
            unit("statement", "s", 1, 2),
            unit("transaction", "t", 5, 11),
        ];
        let mut b = BaselineUnits::default();
        base.iter().for_each(|u| b.add(u));
        let a = Amplification::compute(
            &mut spill(&delayed),
            &BTreeMap::new(),
            Some(("b".into(), b)),
            Some(&known(40)),
        )
        .unwrap();
        assert_eq!(a.verdict.status, VerdictStatus::NotVisible);
        assert!(!a.verdict.delay_visible);
    }

    #[test]
    fn both_directions_delayed_reads_as_larger() {
        let mut b = BaselineUnits::default();
        b.add(&unit("transaction", "t", 4, 4));
        let a = Amplification::compute(
            &mut spill(&[unit("transaction", "t", 4, 164)]),
            &BTreeMap::new(),
            Some(("b".into(), b)),
            Some(&known(20)),
        )
        .unwrap();
        assert_eq!(a.verdict.status, VerdictStatus::Larger);
        assert_eq!(a.verdict.ratio, Some(2.0));
    }

    #[test]
    fn delay_is_inferred_from_a_baseline() {
        let mut b = BaselineUnits::default();
        let mut delayed = Vec::new();
        for i in 0..10 {
            b.add(&unit("statement", "s", 1, 1));
            delayed.push(unit("statement", "s", 1, 31 + (i % 2)));
        }
        let a = Amplification::compute(
            &mut spill(&delayed),
            &BTreeMap::new(),
            Some(("b".into(), b)),
            None,
        )
        .unwrap();
        assert_eq!(a.delay_source, DelaySource::Inferred);
        assert_eq!(a.injected_delay_us, Some(31_000));
        assert_eq!(a.verdict.status, VerdictStatus::Visible);
    }

    #[test]
    fn model_basis_attributes_round_trips_and_checks_the_floor() {
        let delayed = [
            unit("transaction", "t", 7, 152),
            unit("statement", "s", 1, 21),
        ];
        let a = Amplification::compute(
            &mut spill(&delayed),
            &BTreeMap::new(),
            None,
            Some(&known(20)),
        )
        .unwrap();
        assert_eq!(a.basis, Basis::Model);
        assert_eq!(a.by_kind["transaction"].added_us, Some(140_000));
        assert_eq!(a.by_kind["transaction"].mean_factor, Some(7.0));
        assert_eq!(a.verdict.status, VerdictStatus::Consistent);

        let fast = [
            unit("transaction", "t", 7, 30),
            unit("statement", "s", 1, 1),
        ];
        let a = Amplification::compute(&mut spill(&fast), &BTreeMap::new(), None, Some(&known(20)))
            .unwrap();
        assert_eq!(a.verdict.status, VerdictStatus::NotVisible);
    }

    #[test]
    fn nothing_known_is_unknown() {
        let mut totals = BTreeMap::new();
        totals.insert(
            "statement".to_string(),
            KindSummary {
                units: 1,
                round_trips: 1,
                duration_us: 1000,
                ..KindSummary::default()
            },
        );
        let u = [unit("statement", "s", 1, 1)];
        let mut units = spill(&u);
        let mut a = Amplification::compute(&mut units, &totals, None, None).unwrap();
        assert_eq!(a.basis, Basis::None);
        assert_eq!(a.delay_source, DelaySource::None);
        assert_eq!(a.verdict.status, VerdictStatus::Unknown);
        assert_eq!(a.assumption, ASSUMPTION_NONE);
        assert_eq!(a.by_kind, totals);
        let mut out = Vec::new();
        a.write_json(&mut units, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["units"][0], serde_json::to_value(&u[0]).unwrap());
        assert_eq!(v["by_kind"]["statement"]["round_trips"], 1);
    }
}
