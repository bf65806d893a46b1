//! When each request is due: the official simulation's open workload model, precomputed.
//!
//! Gatling's `rampUsersPerSec(1).to(R).during(P)` then `constantUsersPerSec(R).during(P)`
//! starts users at a rate that grows linearly from 1/s to R/s, then stays at R/s; each user
//! sends one request. The arrivals are deterministic (no Poisson noise), as in Gatling's
//! default injection, so two runs send the same requests at the same instants.

/// The three load scenarios of `RinhaBackendCrebitosSimulation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    Debitos,
    Creditos,
    Extratos,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [Scenario::Debitos, Scenario::Creditos, Scenario::Extratos];

    /// Peak arrival rate at SCALE 1, per second.
    pub fn peak(self) -> f64 {
        match self {
            Scenario::Debitos => 220.0,
            Scenario::Creditos => 110.0,
            Scenario::Extratos => 10.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Debitos => "debitos",
            Scenario::Creditos => "creditos",
            Scenario::Extratos => "extratos",
        }
    }
}

/// Offsets (seconds from the start of the load) at which one scenario's users arrive:
/// a ramp from 1/s to `rate`/s over `phase` seconds, then `rate`/s for `phase` seconds.
pub fn arrivals(rate: f64, phase: f64) -> Vec<f64> {
    let mut out = Vec::new();
    // Ramp: N(t) = t + (rate - 1) t² / (2 phase) users by time t; user k arrives at N(t) = k.
    let a = (rate - 1.0) / (2.0 * phase);
    let ramp_users = (1.0 + rate) / 2.0 * phase;
    let mut k = 0.0;
    while k < ramp_users - 1e-9 {
        let t = if a.abs() < 1e-12 {
            k
        } else {
            (-1.0 + (1.0 + 4.0 * a * k).sqrt()) / (2.0 * a)
        };
        out.push(t);
        k += 1.0;
    }
    // Plateau.
    let plateau_users = (rate * phase).round() as u64;
    for j in 0..plateau_users {
        out.push(phase + j as f64 / rate);
    }
    out
}

/// Every arrival of the three scenarios at `scale` × the official rates and
/// `duration_scale` × the 2-minute phases, merged in time order.
pub fn official(scale: f64, duration_scale: f64) -> Vec<(f64, Scenario)> {
    let phase = (120.0 * duration_scale).round().max(1.0);
    let mut all: Vec<(f64, Scenario)> = Scenario::ALL
        .iter()
        .flat_map(|&s| {
            arrivals((s.peak() * scale).round().max(1.0), phase)
                .into_iter()
                .map(move |t| (t, s))
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_counts_match_the_organizers_reports() {
        // Spec §2.3: 39 660 debits, 19 860 credits, 1 860 statements.
        let all = official(1.0, 1.0);
        let count = |s| all.iter().filter(|(_, x)| *x == s).count();
        assert_eq!(count(Scenario::Debitos), 39_660);
        assert_eq!(count(Scenario::Creditos), 19_860);
        assert_eq!(count(Scenario::Extratos), 1_860);
        assert!(all.windows(2).all(|w| w[0].0 <= w[1].0), "time-ordered");
        assert!(all.last().unwrap().0 < 240.0);
    }

    #[test]
    fn the_ramp_grows_linearly_then_holds() {
        let a = arrivals(220.0, 120.0);
        let in_second = |s: f64| a.iter().filter(|&&t| t >= s && t < s + 1.0).count() as f64;
        assert!((in_second(0.0) - 1.9).abs() < 1.5, "{}", in_second(0.0));
        assert!((in_second(60.0) - 110.5).abs() < 2.0, "{}", in_second(60.0));
        assert!(
            (in_second(119.0) - 219.0).abs() < 2.5,
            "{}",
            in_second(119.0)
        );
        assert_eq!(in_second(150.0), 220.0);
    }

    #[test]
    fn scale_multiplies_rates_and_duration_scale_shortens_phases() {
        let a = official(4.0, 0.25);
        let debits = a.iter().filter(|(_, s)| *s == Scenario::Debitos).count();
        // Ramp 1 → 880 over 30 s, then 880/s for 30 s.
        assert_eq!(
            debits,
            ((1.0 + 880.0) / 2.0 * 30.0_f64).ceil() as usize + 880 * 30
        );
    }
}
