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

/// One refusal of each variant. `variant_index` has no catch-all arm, so a new variant does not
/// compile until it is added there, and `every_variant` checks it is added here too.
fn one_of_each() -> Vec<Refusal> {
    let r = || "r".to_string();
    let ns = || "ns".to_string();
    vec![
        Refusal::UidMismatch {
            namespace: ns(),
            run: r(),
            wanted: "a".into(),
            actual: "b".into(),
        },
        Refusal::AttemptMismatch {
            run: r(),
            wanted: 1,
            actual: 2,
        },
        Refusal::Pending { run: r() },
        Refusal::NotDone {
            run: r(),
            reason: None,
            stopping: None,
        },
        Refusal::Succeeded {
            run: r(),
            reason: None,
        },
        Refusal::NotRetryable {
            run: r(),
            on: "PipelineRun \"r\"".into(),
        },
        Refusal::Deterministic {
            run: r(),
            reason: "CouldntGetTask".into(),
            message: None,
        },
        Refusal::TimedOut {
            run: r(),
            budget: None,
        },
        Refusal::BudgetSpent {
            run: r(),
            budget: budget("pipeline"),
            minimum: Duration::from_secs(60),
        },
        Refusal::BadTimeout {
            run: r(),
            error: "bad".into(),
        },
        Refusal::ManagedElsewhere {
            run: r(),
            managed_by: "x".into(),
        },
        Refusal::NoPipelineSpec { run: r() },
        Refusal::UnknownTasks {
            run: r(),
            unknown: vec![UnknownTask {
                field: "spec.restartTasks",
                index: 0,
                name: "zz".into(),
            }],
            known: vec!["a".into()],
        },
        Refusal::ChildrenRunning {
            run: r(),
            children: vec!["r-a".into()],
        },
        Refusal::MissingChildren {
            run: r(),
            missing: vec![MissingChild {
                task: "a".into(),
                child: "r-a".into(),
            }],
        },
        Refusal::MissingResults {
            run: r(),
            missing: vec![MissingResult {
                consumer: "b".into(),
                producer: "a".into(),
                result: "x".into(),
                producer_run: "r-a".into(),
            }],
        },
        Refusal::TasksGone {
            run: r(),
            gone: vec![GoneTask {
                task: "a".into(),
                task_ref: "t".into(),
            }],
        },
        Refusal::NonIdempotent {
            run: r(),
            tasks: vec![NonIdempotent {
                task: "a".into(),
                marked_on: "TaskRun r-a".into(),
            }],
        },
        Refusal::WorkspaceGone {
            run: r(),
            gone: vec![GoneClaim {
                workspace: None,
                claim: "c".into(),
                task: "a".into(),
            }],
        },
        Refusal::AffinityAssistantGone {
            run: r(),
            assistant: "aa".into(),
        },
        Refusal::NothingToRetry {
            run: r(),
            reason: None,
        },
        Refusal::InlineSpecDisabled {
            run: r(),
            field: "spec.pipelineSpec".into(),
        },
        Refusal::StatusRejected {
            namespace: ns(),
            run: r(),
            what: "claim".into(),
            message: "denied".into(),
        },
        Refusal::AlreadyStarted {
            namespace: ns(),
            run: r(),
            attempt: 2,
            by: "a".into(),
            start: "t".into(),
        },
        Refusal::InProgress {
            namespace: ns(),
            run: r(),
            attempt: 2,
            by: "a".into(),
            start: "t".into(),
            grace_seconds: 30,
        },
        Refusal::InFlight {
            namespace: ns(),
            run: r(),
        },
        Refusal::RunNotFound {
            namespace: ns(),
            run: r(),
        },
    ]
}

fn variant_index(r: &Refusal) -> usize {
    match r {
        Refusal::UidMismatch { .. } => 0,
        Refusal::AttemptMismatch { .. } => 1,
        Refusal::Pending { .. } => 2,
        Refusal::NotDone { .. } => 3,
        Refusal::Succeeded { .. } => 4,
        Refusal::NotRetryable { .. } => 5,
        Refusal::Deterministic { .. } => 6,
        Refusal::TimedOut { .. } => 7,
        Refusal::BudgetSpent { .. } => 8,
        Refusal::BadTimeout { .. } => 9,
        Refusal::ManagedElsewhere { .. } => 10,
        Refusal::NoPipelineSpec { .. } => 11,
        Refusal::UnknownTasks { .. } => 12,
        Refusal::ChildrenRunning { .. } => 13,
        Refusal::MissingChildren { .. } => 14,
        Refusal::MissingResults { .. } => 15,
        Refusal::TasksGone { .. } => 16,
        Refusal::NonIdempotent { .. } => 17,
        Refusal::WorkspaceGone { .. } => 18,
        Refusal::AffinityAssistantGone { .. } => 19,
        Refusal::NothingToRetry { .. } => 20,
        Refusal::InlineSpecDisabled { .. } => 21,
        Refusal::StatusRejected { .. } => 22,
        Refusal::AlreadyStarted { .. } => 23,
        Refusal::InProgress { .. } => 24,
        Refusal::InFlight { .. } => 25,
        Refusal::RunNotFound { .. } => 26,
    }
}

/// Every variant: a 4xx whose 422s carry causes, and a label that docs/monitoring.md lists (the
/// operator's list of `tekton_retry_refusals_total` reasons), which lists no other refusal.
#[test]
fn every_variant_is_a_documented_4xx() {
    let all = one_of_each();
    let indices: std::collections::BTreeSet<usize> = all.iter().map(variant_index).collect();
    assert_eq!(
        indices,
        (0..=26).collect(),
        "one_of_each lists each variant once"
    );
    let doc = include_str!("../../../../../docs/monitoring.md");
    let row = doc
        .lines()
        .find(|l| l.starts_with("| `refusals_total` |"))
        .expect("docs/monitoring.md has the refusals_total row");
    // "`reason` is the refusal (`A`, `B`, …), else …": the names between the parentheses.
    let listed = row
        .split_once("is the refusal (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(names, _)| names)
        .expect("the row lists the refusal reasons");
    let mut labels = std::collections::BTreeSet::new();
    for r in &all {
        let e = ApiError::from(r.clone());
        assert!((400..500).contains(&e.code()), "{r:?}");
        assert!(
            e.code() != 422 || !e.causes.is_empty(),
            "{r:?} has no causes"
        );
        assert!(!e.message.is_empty(), "{r:?}");
        assert!(
            listed.contains(&format!("`{}`", r.label())),
            "docs/monitoring.md does not list the refusal reason {}",
            r.label()
        );
        labels.insert(r.label());
    }
    let documented: std::collections::BTreeSet<&str> =
        listed.split(", ").map(|n| n.trim_matches('`')).collect();
    assert_eq!(
        documented, labels,
        "docs/monitoring.md and Refusal::label differ"
    );
}
