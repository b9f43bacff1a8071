//! Prometheus metrics of the controllers: reconciles, errors and durations per controller.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub controller: String,
    pub error: String,
}

pub struct Metrics {
    pub reconciles: Family<ControllerLabel, Counter>,
    pub errors: Family<ErrorLabel, Counter>,
    pub duration: Family<ControllerLabel, Histogram>,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
        };
        registry.register(
            "capd_reconcile",
            "Reconciles per controller",
            m.reconciles.clone(),
        );
        registry.register(
            "capd_reconcile_errors",
            "Failed reconciles per controller and error kind",
            m.errors.clone(),
        );
        registry.register(
            "capd_reconcile_duration_seconds",
            "Reconcile duration per controller",
            m.duration.clone(),
        );
        m
    }

    pub fn observe(&self, controller: &str, took: Duration, error: Option<&str>) {
        let c = ControllerLabel {
            controller: controller.to_string(),
        };
        self.reconciles.get_or_create(&c).inc();
        self.duration.get_or_create(&c).observe(took.as_secs_f64());
        if let Some(e) = error {
            self.errors
                .get_or_create(&ErrorLabel {
                    controller: controller.to_string(),
                    error: e.to_string(),
                })
                .inc();
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}
