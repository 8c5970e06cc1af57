//! The wire texts, codes and labels of the refusals.

use super::*;
use crate::api::Cause;

fn budget(which: &'static str) -> Budget {
    Budget {
        limit: Duration::from_secs(3600),
        which,
        start: chrono::DateTime::parse_from_rfc3339("2026-11-26T19:30:30Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default(),
        remaining: Duration::from_secs(30),
    }
}

/// The wire texts README, docs and dashboards cite, byte for byte.
#[test]
fn messages_on_the_wire() {
    let cases = [
        (
            Refusal::AttemptMismatch {
                run: "r".into(),
                wanted: 1,
                actual: 2,
            },
            "Precondition failed: PipelineRun \"r\" is at attempt 2, not 1 \
             (spec.preconditions.attempt): another retry started since. See its \
             retry.tekton.dev/last-retry annotation; retry with preconditions.attempt=2 if it \
             still needs one.",
        ),
        (
            Refusal::NotDone {
                run: "r".into(),
                reason: Some("Running".into()),
                stopping: None,
            },
            "PipelineRun \"r\" is still running (Succeeded=Unknown, reason Running): only a \
             finished run can be retried; wait until it ends, or cancel it (spec.status: \
             Cancelled), then retry.",
        ),
        (
            Refusal::NotDone {
                run: "r".into(),
                reason: None,
                stopping: Some("Cancelled".into()),
            },
            "PipelineRun \"r\" is still running (Succeeded=Unknown): only a finished run can \
             be retried; it is stopping (spec.status: Cancelled): retry once it has ended.",
        ),
        (
            Refusal::Succeeded {
                run: "r".into(),
                reason: Some("Completed".into()),
            },
            "PipelineRun \"r\" succeeded (Completed): a successful run is not retried. Create \
             a new PipelineRun to run the pipeline again.",
        ),
        (
            Refusal::BudgetSpent {
                run: "r".into(),
                budget: budget("tasks"),
                minimum: Duration::from_secs(60),
            },
            "PipelineRunRetry \"r\" is invalid: only 30s of the tasks timeout is left",
        ),
        (
            Refusal::ManagedElsewhere {
                run: "r".into(),
                managed_by: "kueue.x-k8s.io/multikueue".into(),
            },
            "PipelineRunRetry \"r\" is invalid: it is managed by \
             \"kueue.x-k8s.io/multikueue\", not by Tekton",
        ),
        (
            Refusal::StatusRejected {
                namespace: "ns".into(),
                run: "r".into(),
                what: "claim".into(),
                message: "denied".into(),
            },
            "the cluster refused the claim of pipelinerun ns/r: denied",
        ),
        (
            Refusal::InProgress {
                namespace: "ns".into(),
                run: "r".into(),
                attempt: 2,
                by: "alice".into(),
                start: "2026-11-26T19:30:30Z".into(),
                grace_seconds: 30,
            },
            "attempt 2 of pipelinerun ns/r was started by alice at 2026-11-26T19:30:30Z and \
             is still in progress; if it does not finish, a retry after 30s completes it",
        ),
        (
            Refusal::InFlight {
                namespace: "ns".into(),
                run: "r".into(),
            },
            "another retry of pipelinerun ns/r is in progress on this server; wait for it and \
             check the run",
        ),
        (
            Refusal::RunNotFound {
                namespace: "ns".into(),
                run: "r".into(),
            },
            "pipelineruns.tekton.dev \"r\" not found in namespace \"ns\"; check the name with \
             `kubectl get pipelineruns -n ns`",
        ),
    ];
    for (refusal, text) in cases {
        assert_eq!(refusal.to_string(), text);
    }
    let spent = Refusal::BudgetSpent {
        run: "r".into(),
        budget: budget("tasks"),
        minimum: Duration::from_secs(60),
    };
    assert_eq!(
        spent.causes(),
        [Cause::forbidden(
            "spec.timeouts.tasks",
            "the tasks timeout of 1h0m0s is measured from the original start \
             2026-11-26T19:30:30Z: only 30s is left, less than the 1m0s a retry needs, and \
             Tekton ends the run PipelineRunTimeout once the tasks timeout has passed, even \
             when              only finally tasks run again. Create a new PipelineRun (with \
             longer timeouts if needed)"
        )]
    );
}

#[test]
fn the_status_carries_code_label_name_and_causes() {
    let e = ApiError::from(Refusal::ChildrenRunning {
        run: "r".into(),
        children: vec!["r-a".into(), "r-b".into()],
    });
    assert_eq!(
        (e.code(), e.refusal, e.name.as_deref()),
        (409, Some("ChildrenRunning"), Some("r"))
    );
    assert_eq!(e.retry_after_seconds, Some(5));
    assert!(e.message.contains("child runs r-a, r-b are not"));
    let s = e.to_status();
    assert_eq!(s["reason"], "Conflict");
    assert_eq!(s["details"]["retryAfterSeconds"], 5);

    let e = ApiError::from(Refusal::MissingChildren {
        run: "r".into(),
        missing: vec![MissingChild {
            task: "a".into(),
            child: "r-a".into(),
        }],
    });
    assert_eq!((e.code(), e.refusal), (422, Some("MissingChild")));
    assert_eq!(e.causes[0].reason, "FieldValueInvalid");
    assert_eq!(e.causes[0].field, "spec.restartTasks");

    // The engine's own refusals leave `details.name` to the request they answer.
    let e = ApiError::from(Refusal::RunNotFound {
        namespace: "ns".into(),
        run: "r".into(),
    });
    assert_eq!((e.code(), e.refusal, e.name), (404, Some("NotFound"), None));
    assert!(e.causes.is_empty());
}

#[test]
fn precondition_refusals_share_one_label() {
    let uid = Refusal::UidMismatch {
        namespace: "ns".into(),
        run: "r".into(),
        wanted: "a".into(),
        actual: "b".into(),
    };
    let attempt = Refusal::AttemptMismatch {
        run: "r".into(),
        wanted: 1,
        actual: 2,
    };
    assert_eq!(
        uid.to_string(),
        "precondition failed: pipelinerun ns/r has uid b, not a: it was replaced by a new run"
    );
    assert_eq!(uid.label(), "PreconditionFailed");
    assert_eq!(attempt.label(), "PreconditionFailed");
    assert_eq!((uid.code(), attempt.code()), (409, 409));
}
