//! How staged chunks become `$import` calls: at most [`MAX_INPUTS_PER_CALL`] inputs per call
//! (the service refuses more), at most [`MAX_IN_FLIGHT`] operations running at once (more
//! calls wait in order), each polled to completion.

use std::future::Future;

/// The service's limit of `input` entries in one `$import` request.
pub const MAX_INPUTS_PER_CALL: usize = 10_000;
/// `$import` operations fhirpipe runs at once.
pub const MAX_IN_FLIGHT: usize = 5;

/// One staged chunk as an `$import` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Resource type.
    pub ty: String,
    /// The chunk's URL on the staging account, without a query string.
    pub url: String,
}

/// Splits inputs into calls of at most `max` inputs each, keeping their order.
pub fn split(inputs: &[Input], max: usize) -> Vec<Vec<Input>> {
    inputs.chunks(max.max(1)).map(<[Input]>::to_vec).collect()
}

/// Runs `f` on every item with at most `limit` running at once; results in item order.
pub async fn run_limited<T, R, F, Fut>(items: Vec<T>, limit: usize, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = R>,
{
    use futures::StreamExt;
    futures::stream::iter(items.into_iter().map(f))
        .buffered(limit.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn inputs(n: usize) -> Vec<Input> {
        (0..n)
            .map(|i| Input {
                ty: "Observation".into(),
                url: format!(
                    "https://acct.blob.core.windows.net/staging/run/Observation.{i:05}.ndjson"
                ),
            })
            .collect()
    }

    #[test]
    fn issue5_more_than_10000_inputs_are_split_across_calls() {
        let all = inputs(25_001);
        let calls = split(&all, MAX_INPUTS_PER_CALL);
        let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10_000, 10_000, 5_001]);
        // Order kept and nothing lost or repeated.
        let flat: Vec<Input> = calls.into_iter().flatten().collect();
        assert_eq!(flat, all);
        assert_eq!(split(&inputs(10_000), MAX_INPUTS_PER_CALL).len(), 1);
        assert_eq!(split(&inputs(10_001), MAX_INPUTS_PER_CALL).len(), 2);
        assert!(split(&[], MAX_INPUTS_PER_CALL).is_empty());
        // Each call's body stays under the limit the service enforces.
        let body = crate::fhirclient::import_parameters(
            "InitialLoad",
            &split(&all, MAX_INPUTS_PER_CALL)[0]
                .iter()
                .map(|i| (i.ty.as_str(), i.url.as_str()))
                .collect::<Vec<_>>(),
        );
        let n = body["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == "input")
            .count();
        assert_eq!(n, MAX_INPUTS_PER_CALL);
    }

    #[test]
    fn issue5_at_most_five_operations_run_at_once() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let out = rt.block_on(run_limited((0..12).collect(), MAX_IN_FLIGHT, |i: u32| {
            let running = running.clone();
            let peak = peak.clone();
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Later calls finish first: results must still come back in order.
                tokio::time::sleep(std::time::Duration::from_millis(20 - i as u64)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                i * 10
            }
        }));
        assert_eq!(out, (0..12).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), MAX_IN_FLIGHT);
    }
}
