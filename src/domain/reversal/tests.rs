use super::*;
use crate::domain::Currency;

fn paid() -> Money {
    Money::new(19_900_000, Currency::COP).unwrap()
}

fn refunded(minor: i64) -> Report {
    Report {
        refunded_minor: minor,
        ..Report::default()
    }
}

fn dispute(stage: DisputeStage, due_at: Option<i64>) -> Report {
    Report {
        dispute: Some(Dispute {
            stage,
            due_at,
            reason: Some("fraudulent".into()),
        }),
        ..Report::default()
    }
}

/// Folds reports the way `settle` does: only a change moves; a refused report changes
/// nothing.
fn fold(reports: &[Report]) -> Reversal {
    let p = paid();
    reports
        .iter()
        .fold(Reversal::none(&p), |cur, r| match cur.apply(&p, r) {
            Ok(Some(next)) => next,
            Ok(None) | Err(_) => cur,
        })
}

fn standing_after(reports: &[Report]) -> Standing {
    fold(reports).standing(&paid())
}

#[test]
fn a_fresh_payment_is_paid_and_an_empty_report_changes_nothing() {
    let p = paid();
    let none = Reversal::none(&p);
    assert_eq!(none.standing(&p), Standing::Paid);
    assert_eq!(none.apply(&p, &Report::default()), Ok(None));
}

#[test]
fn a_partial_refund_keeps_the_amount_and_a_full_one_is_refunded() {
    let p = paid();
    let partial = Reversal::none(&p).apply(&p, &refunded(5_000_000)).unwrap().unwrap();
    assert_eq!(partial.refunded, Money::non_negative(5_000_000, Currency::COP).unwrap());
    assert_eq!(partial.standing(&p), Standing::PartiallyRefunded);
    let full = partial.apply(&p, &refunded(19_900_000)).unwrap().unwrap();
    assert_eq!(full.standing(&p), Standing::Refunded);
    assert!(full.standing(&p).is_reversed());
    assert!(!partial.standing(&p).is_reversed());
}

#[test]
fn partial_refunds_add_up_as_the_gateway_reports_its_running_total() {
    assert_eq!(
        fold(&[refunded(4_000_000), refunded(9_000_000)])
            .refunded
            .amount_minor(),
        9_000_000
    );
    assert_eq!(
        standing_after(&[refunded(4_000_000), refunded(9_000_000), refunded(19_900_000)]),
        Standing::Refunded
    );
}

#[test]
fn a_late_or_duplicate_refund_report_changes_nothing() {
    let p = paid();
    let now = fold(&[refunded(9_000_000)]);
    // The same total again, and an older total delivered late.
    assert_eq!(now.apply(&p, &refunded(9_000_000)), Ok(None));
    assert_eq!(now.apply(&p, &refunded(4_000_000)), Ok(None));
    assert_eq!(now.apply(&p, &refunded(0)), Ok(None));
    let full = fold(&[refunded(19_900_000)]);
    assert_eq!(full.apply(&p, &refunded(9_000_000)), Ok(None));
}

#[test]
fn more_refunded_than_paid_is_refused_and_nothing_of_that_report_is_kept() {
    let p = paid();
    let cur = Reversal::none(&p);
    let over = Report {
        refunded_minor: 19_900_001,
        dispute: Some(Dispute {
            stage: DisputeStage::Open,
            due_at: None,
            reason: None,
        }),
        ..Report::default()
    };
    assert_eq!(
        cur.apply(&p, &over),
        Err(ReversalError::ExceedsPaid {
            paid: 19_900_000,
            claimed: 19_900_001
        })
    );
    assert_eq!(cur.apply(&p, &refunded(-1)), Err(ReversalError::Negative(-1)));
}

#[test]
fn a_void_returns_everything_and_stays() {
    let p = paid();
    let voided = Report {
        voided: true,
        ..Report::default()
    };
    let after = Reversal::none(&p).apply(&p, &voided).unwrap().unwrap();
    assert_eq!(after.standing(&p), Standing::Voided);
    assert_eq!(after.refunded.amount_minor(), p.amount_minor());
    // A later report without the void flag does not undo it.
    assert_eq!(after.apply(&p, &Report::default()), Ok(None));
    assert_eq!(after.apply(&p, &voided), Ok(None));
}

#[test]
fn a_dispute_opens_gains_its_deadline_and_closes_for_good() {
    let p = paid();
    let opened = fold(&[dispute(DisputeStage::Open, None)]);
    assert_eq!(opened.standing(&p), Standing::Disputed);
    let with_due = opened
        .apply(&p, &dispute(DisputeStage::Open, Some(1_000)))
        .unwrap()
        .unwrap();
    assert_eq!(with_due.dispute.as_ref().and_then(|d| d.due_at), Some(1_000));
    // An update without a deadline keeps the one we know.
    assert_eq!(with_due.apply(&p, &dispute(DisputeStage::Open, None)), Ok(None));
    let lost = with_due.apply(&p, &dispute(DisputeStage::Lost, None)).unwrap().unwrap();
    assert_eq!(lost.standing(&p), Standing::DisputeLost);
    assert!(lost.standing(&p).is_reversed());
    // Closed is closed: a late `updated` (open) or a contradicting close changes nothing.
    assert_eq!(lost.apply(&p, &dispute(DisputeStage::Open, Some(5))), Ok(None));
    assert_eq!(lost.apply(&p, &dispute(DisputeStage::Won, None)), Ok(None));
    let won = fold(&[dispute(DisputeStage::Open, None), dispute(DisputeStage::Won, None)]);
    assert_eq!(won.standing(&p), Standing::DisputeWon);
    assert!(!won.standing(&p).is_reversed());
}

#[test]
fn a_dispute_can_be_reported_closed_at_once() {
    assert_eq!(
        standing_after(&[dispute(DisputeStage::Lost, None)]),
        Standing::DisputeLost
    );
    assert_eq!(
        standing_after(&[dispute(DisputeStage::Won, None)]),
        Standing::DisputeWon
    );
}

#[test]
fn refunds_and_disputes_combine_in_one_standing() {
    // Partially refunded, then disputed: the open dispute is what sales must act on.
    let both = [refunded(5_000_000), dispute(DisputeStage::Open, None)];
    assert_eq!(standing_after(&both), Standing::Disputed);
    assert_eq!(fold(&both).refunded.amount_minor(), 5_000_000);
    // Won, with a partial refund: partially refunded is what remains true.
    let won_partial = [dispute(DisputeStage::Won, None), refunded(5_000_000)];
    assert_eq!(standing_after(&won_partial), Standing::PartiallyRefunded);
    // A full refund outranks a lost dispute in the wording; both mean the money is gone.
    let gone = [dispute(DisputeStage::Lost, None), refunded(19_900_000)];
    assert_eq!(standing_after(&gone), Standing::Refunded);
}

#[test]
fn the_outcome_does_not_depend_on_the_order_reports_arrive_in() {
    let reports = [
        refunded(4_000_000),
        refunded(9_000_000),
        dispute(DisputeStage::Open, Some(7)),
        dispute(DisputeStage::Lost, None),
    ];
    // Every order that keeps the dispute's own open-before-lost sequence.
    let orders: [[usize; 4]; 6] = [
        [0, 1, 2, 3],
        [1, 0, 2, 3],
        [2, 3, 0, 1],
        [2, 0, 3, 1],
        [0, 2, 1, 3],
        [1, 2, 3, 0],
    ];
    let expected = fold(&reports);
    for order in orders {
        let shuffled: Vec<Report> = order.iter().map(|&i| reports[i].clone()).collect();
        let got = fold(&shuffled);
        assert_eq!(got.refunded, expected.refunded, "{order:?}");
        assert_eq!(
            got.dispute.as_ref().map(|d| d.stage),
            Some(DisputeStage::Lost),
            "{order:?}"
        );
        // Delivered twice over, still the same.
        let doubled: Vec<Report> = shuffled.iter().flat_map(|r| [r.clone(), r.clone()]).collect();
        assert_eq!(fold(&doubled).refunded, expected.refunded);
    }
}

#[test]
fn the_refund_reason_is_that_of_the_refund_that_moved_the_total() {
    let p = paid();
    let first = Report {
        refunded_minor: 1_000,
        refund_reason: Some("requested_by_customer".into()),
        ..Report::default()
    };
    let r = Reversal::none(&p).apply(&p, &first).unwrap().unwrap();
    let same_total_other_words = Report {
        refund_reason: Some("duplicate".into()),
        ..first.clone()
    };
    assert_eq!(r.apply(&p, &same_total_other_words), Ok(None));
    assert_eq!(r.refund_reason.as_deref(), Some("requested_by_customer"));
}

#[test]
fn stages_and_standings_have_stable_names() {
    for stage in DisputeStage::ALL {
        assert_eq!(DisputeStage::parse(stage.as_str()), Some(stage));
    }
    assert_eq!(DisputeStage::parse("needs_response"), None);
    let names: Vec<_> = [
        Standing::Paid,
        Standing::PartiallyRefunded,
        Standing::Refunded,
        Standing::Voided,
        Standing::Disputed,
        Standing::DisputeWon,
        Standing::DisputeLost,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    assert_eq!(
        names,
        [
            "paid",
            "partially_refunded",
            "refunded",
            "voided",
            "disputed",
            "dispute_won",
            "dispute_lost"
        ]
    );
}
