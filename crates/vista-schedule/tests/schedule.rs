//! Schedules and the LR finder against fastai's formulas (`golden/make_golden.py`) and
//! their invariants (property tests with a fixed seed and case count).

use proptest::prelude::{Strategy, any};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use proptest::{prop_assert, prop_oneof};
use serde_json::Value;
use vista_schedule::{LrFindConfig, LrFinder, Schedule};

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/golden.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-30)
}

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases: 128,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[11; 32]),
    )
}

#[test]
fn schedules_equal_fastai_at_golden_positions() {
    let g = golden();
    let total = 1000;
    let steps: Vec<usize> = floats(&g["positions"])
        .iter()
        .map(|p| (p * total as f64).round() as usize)
        .collect();
    let cases = [
        ("one_cycle_lr", Schedule::one_cycle(1e-2), false),
        ("one_cycle_mom", Schedule::one_cycle(1e-2), true),
        ("flat_cos", Schedule::flat_cos(3e-3), false),
        (
            "cosine",
            Schedule::Cosine {
                lr_max: 0.1,
                lr_min: 1e-4,
            },
            false,
        ),
    ];
    for (name, schedule, momentum) in cases {
        for (&step, want) in steps.iter().zip(floats(&g[name])) {
            let got = if momentum {
                schedule.momentum(step, total).unwrap()
            } else {
                schedule.lr(step, total)
            };
            assert!(
                close(got, want),
                "{name} at step {step}: {got} vs fastai {want}"
            );
        }
    }
}

#[test]
fn one_cycle_endpoints() {
    let s = Schedule::one_cycle(0.5);
    assert!(close(s.lr(0, 400), 0.5 / 25.0));
    assert!(close(s.lr(100, 400), 0.5));
    assert!(close(s.lr(400, 400), 0.5 / 1e5));
    assert!(close(s.momentum(0, 400).unwrap(), 0.95) && close(s.momentum(100, 400).unwrap(), 0.85));
    // Rates above 1 are fine (burn's own schedulers reject them).
    assert!(Schedule::one_cycle(3.0).lr(100, 400) == 3.0);
}

fn schedule_strategy() -> impl Strategy<Value = Schedule> {
    let lr = 1e-6f64..10.0;
    prop_oneof![
        (lr.clone(), 1.5f64..100.0, 10.0f64..1e6, 0.01f64..0.99).prop_map(
            |(lr_max, div, div_final, pct_start)| Schedule::OneCycle {
                lr_max,
                div,
                div_final,
                pct_start,
                moms: (0.95, 0.85, 0.95)
            }
        ),
        (lr.clone(), 0.0f64..1.0).prop_map(|(lr_max, f)| Schedule::Cosine {
            lr_max,
            lr_min: lr_max * f
        }),
        (lr.clone(), 0.0f64..1.0, 1usize..50, 1.0f64..3.0).prop_map(
            |(lr_max, f, cycle_len, cycle_mult)| {
                Schedule::Sgdr {
                    lr_max,
                    lr_min: lr_max * f,
                    cycle_len,
                    cycle_mult,
                }
            }
        ),
        (lr.clone(), 0.0f64..1.0, 10.0f64..1e6).prop_map(|(lr, pct_start, div_final)| {
            Schedule::FlatCos {
                lr,
                pct_start,
                div_final,
            }
        }),
        (lr.clone(), 0usize..100).prop_map(|(lr, warmup)| Schedule::Warmup { lr, warmup }),
        lr.prop_map(|lr| Schedule::Constant { lr }),
    ]
}

#[test]
fn every_schedule_stays_within_its_bounds() {
    runner()
        .run(
            &(schedule_strategy(), 1usize..2000, any::<u16>()),
            |(s, total, k)| {
                let (lo, hi) = s.bounds();
                let step = k as usize % (total + 1);
                let lr = s.lr(step, total);
                prop_assert!(
                    lr >= lo * (1.0 - 1e-9) && lr <= hi * (1.0 + 1e-9),
                    "{s:?}: lr {lr} outside [{lo}, {hi}]"
                );
                if let Some(m) = s.momentum(step, total) {
                    prop_assert!((0.85 - 1e-12..=0.95 + 1e-12).contains(&m));
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn continuous_schedules_have_no_jumps() {
    runner()
        .run(&schedule_strategy(), |s| {
            let total = 20_000;
            let restarts = s.restarts(total);
            let (lo, hi) = s.bounds();
            // The steepest a continuous schedule can be: a half cosine over its shortest
            // phase moves at most pi/2 * (hi - lo) / length per step; a linear warm-up
            // moves lr / warmup.
            let t = total as f64;
            let phase = match s {
                Schedule::OneCycle { pct_start, .. } => {
                    (pct_start.min(1.0 - pct_start) * t).floor()
                }
                Schedule::Cosine { .. } | Schedule::Constant { .. } => t,
                Schedule::Sgdr { cycle_len, .. } => cycle_len as f64,
                Schedule::FlatCos { pct_start, .. } => ((1.0 - pct_start) * t).floor(),
                Schedule::Warmup { warmup, .. } => warmup.max(1) as f64,
            };
            let jump = match s {
                Schedule::Warmup { lr, warmup } => lr / warmup.max(1) as f64,
                _ => std::f64::consts::FRAC_PI_2 * (hi - lo) / phase.max(1.0),
            };
            for step in 1..=total {
                let d = (s.lr(step, total) - s.lr(step - 1, total)).abs();
                if !restarts.contains(&step) {
                    prop_assert!(
                        d <= jump * 1.01 + 1e-15,
                        "{s:?}: jump of {d} at step {step}"
                    );
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn sgdr_restarts_where_cycle_len_and_mult_put_them() {
    let s = Schedule::Sgdr {
        lr_max: 0.1,
        lr_min: 0.001,
        cycle_len: 10,
        cycle_mult: 2.0,
    };
    assert_eq!(s.restarts(100), [0, 10, 30, 70]);
    for &r in &[10usize, 30, 70] {
        assert!(close(s.lr(r, 100), 0.1), "restart at {r} starts at lr_max");
        assert!(
            s.lr(r - 1, 100) < 0.01,
            "the cycle before {r} ends near lr_min"
        );
    }
    let flat = Schedule::Sgdr {
        lr_max: 0.1,
        lr_min: 0.0,
        cycle_len: 25,
        cycle_mult: 1.0,
    };
    assert_eq!(flat.restarts(100), [0, 25, 50, 75]);
}

/// The loss curve of `golden/make_golden.py`.
fn raw_loss(i: usize, lr: f64) -> f64 {
    let x = lr.log10();
    2.3 - 1.6 / (1.0 + (-2.0 * (x + 3.5)).exp())
        + (2.2 * (x - 0.2)).exp()
        + 0.03 * (1.7 * i as f64).sin()
}

fn sweep(nan_at: Option<usize>) -> LrFinder {
    let mut f = LrFinder::new(LrFindConfig::default());
    let mut i = 0;
    loop {
        let loss = if nan_at.is_some_and(|n| i >= n) {
            f64::NAN
        } else {
            raw_loss(i, f.lr())
        };
        i += 1;
        if !f.record(loss) {
            return f;
        }
    }
}

#[test]
fn lr_finder_matches_fastai_and_survives_nan() {
    let g = golden();
    for (key, nan_at) in [("finder", None), ("finder_nan", Some(80))] {
        let want = &g[key];
        let f = sweep(nan_at);
        assert_eq!(
            f.lrs.len() as u64,
            want["steps"].as_u64().unwrap(),
            "{key}: steps"
        );
        assert!(close(
            *f.lrs.last().unwrap(),
            want["last_lr"].as_f64().unwrap()
        ));
        let s = f.suggestions();
        for (name, got) in [
            ("valley", s.valley),
            ("steep", s.steep),
            ("minimum", s.minimum),
            ("slide", s.slide),
        ] {
            let want = want[name].as_f64().unwrap();
            let got = got.unwrap_or_else(|| panic!("{key}: no {name} suggestion"));
            assert!(close(got, want), "{key} {name}: {got} vs fastai {want}");
        }
    }
}

#[test]
fn lr_finder_stops_on_divergence_and_short_curves_suggest_nothing() {
    let mut f = LrFinder::new(LrFindConfig::default());
    assert!(f.record(1.0));
    assert!(f.record(1.0));
    let mut steps = 2;
    while f.record(100.0) {
        steps += 1;
    }
    assert!(
        steps < 20,
        "a 100x loss stops the sweep early (took {steps})"
    );
    let s = f.suggestions();
    assert_eq!(
        (s.valley, s.steep, s.minimum, s.slide),
        (None, None, None, None)
    );
    // The sweep covers 1e-7 .. 10 exponentially.
    let g = LrFinder::new(LrFindConfig::default());
    assert!(close(g.lr(), 1e-7));
}
