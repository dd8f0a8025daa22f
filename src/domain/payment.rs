//! Payment attempt state machine. Gateway events arrive late, duplicated
//! and out of order; the gateway is the source of truth, but a stale event
//! must never undo a newer fact (above all: nothing undoes a payment).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Attempt stored; gateway checkout not created yet.
    Created,
    /// Customer sent to the gateway.
    Redirected,
    /// Gateway reports in progress (incl. delayed methods: PSE, boleto, Pix).
    Pending,
    /// Paid.
    Approved,
    /// Gateway declined or errored.
    Declined,
    /// Checkout expired or voided unpaid.
    Expired,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown payment status {0}")]
pub struct UnknownStatus(pub String);

/// Outcome of applying an incoming status to the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Changed {
        from: PaymentStatus,
        to: PaymentStatus,
    },
    /// Duplicate event.
    Unchanged,
    /// Stale or contradicting event; keep current state (worth logging).
    Ignored {
        current: PaymentStatus,
        incoming: PaymentStatus,
    },
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::Created,
        PaymentStatus::Redirected,
        PaymentStatus::Pending,
        PaymentStatus::Approved,
        PaymentStatus::Declined,
        PaymentStatus::Expired,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentStatus::Created => "created",
            PaymentStatus::Redirected => "redirected",
            PaymentStatus::Pending => "pending",
            PaymentStatus::Approved => "approved",
            PaymentStatus::Declined => "declined",
            PaymentStatus::Expired => "expired",
        }
    }

    pub fn apply(self, incoming: PaymentStatus) -> Transition {
        use PaymentStatus::*;
        if incoming == self {
            return Transition::Unchanged;
        }
        let allowed = match self {
            Created => true,
            Redirected => incoming != Created,
            Pending => incoming.is_final(),
            // A retry inside the same checkout, or a late payment, can still
            // succeed after a decline/expiry; nothing else reopens them.
            Declined | Expired => incoming == Approved,
            // Money received is never undone by a late event.
            Approved => false,
        };
        if allowed {
            Transition::Changed {
                from: self,
                to: incoming,
            }
        } else {
            Transition::Ignored {
                current: self,
                incoming,
            }
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            PaymentStatus::Approved | PaymentStatus::Declined | PaymentStatus::Expired
        )
    }

    pub fn is_paid(self) -> bool {
        self == PaymentStatus::Approved
    }
}

impl FromStr for PaymentStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PaymentStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::*;
    use super::*;

    /// Fold events the way the webhook handler will: only `Changed` moves.
    fn fold(start: PaymentStatus, events: &[PaymentStatus]) -> PaymentStatus {
        events.iter().fold(start, |cur, &ev| match cur.apply(ev) {
            Transition::Changed { to, .. } => to,
            Transition::Unchanged | Transition::Ignored { .. } => cur,
        })
    }

    #[test]
    fn every_pair() {
        // 'C' = Changed, 'U' = Unchanged, 'I' = Ignored.
        // Columns: Created Redirected Pending Approved Declined Expired.
        let table: [(PaymentStatus, [char; 6]); 6] = [
            (Created, ['U', 'C', 'C', 'C', 'C', 'C']),
            (Redirected, ['I', 'U', 'C', 'C', 'C', 'C']),
            (Pending, ['I', 'I', 'U', 'C', 'C', 'C']),
            (Approved, ['I', 'I', 'I', 'U', 'I', 'I']),
            (Declined, ['I', 'I', 'I', 'C', 'U', 'I']),
            (Expired, ['I', 'I', 'I', 'C', 'I', 'U']),
        ];
        let mut checked = 0;
        for (current, row) in table {
            for (incoming, want) in PaymentStatus::ALL.into_iter().zip(row) {
                let expected = match want {
                    'C' => Transition::Changed {
                        from: current,
                        to: incoming,
                    },
                    'U' => Transition::Unchanged,
                    _ => Transition::Ignored { current, incoming },
                };
                assert_eq!(current.apply(incoming), expected, "{current} -> {incoming}");
                checked += 1;
            }
        }
        assert_eq!(checked, 36);
    }

    #[test]
    fn pending_after_approved_is_ignored() {
        assert_eq!(
            Approved.apply(Pending),
            Transition::Ignored {
                current: Approved,
                incoming: Pending
            }
        );
    }

    #[test]
    fn declined_after_approved_is_ignored() {
        assert_eq!(
            Approved.apply(Declined),
            Transition::Ignored {
                current: Approved,
                incoming: Declined
            }
        );
    }

    #[test]
    fn pending_after_declined_is_ignored() {
        assert_eq!(
            Declined.apply(Pending),
            Transition::Ignored {
                current: Declined,
                incoming: Pending
            }
        );
    }

    #[test]
    fn approved_after_declined_changes() {
        assert_eq!(
            Declined.apply(Approved),
            Transition::Changed {
                from: Declined,
                to: Approved
            }
        );
        assert_eq!(
            Expired.apply(Approved),
            Transition::Changed {
                from: Expired,
                to: Approved
            }
        );
    }

    #[test]
    fn duplicates_are_unchanged() {
        for s in PaymentStatus::ALL {
            assert_eq!(s.apply(s), Transition::Unchanged);
        }
    }

    fn permutations(items: &[PaymentStatus]) -> Vec<Vec<PaymentStatus>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let head = rest.remove(i);
            for mut tail in permutations(&rest) {
                tail.insert(0, head);
                out.push(tail);
            }
        }
        out
    }

    #[test]
    fn approved_always_wins_regardless_of_order() {
        for set in [
            vec![Pending, Approved, Declined],
            vec![Pending, Approved, Declined, Expired],
            vec![Pending, Approved, Declined, Expired, Redirected, Created],
        ] {
            let perms = permutations(&set);
            assert!(perms.len() >= 6);
            for p in perms {
                assert_eq!(fold(Redirected, &p), Approved, "{p:?}");
                // Duplicated delivery changes nothing either.
                let doubled: Vec<_> = p.iter().flat_map(|&s| [s, s]).collect();
                assert_eq!(fold(Redirected, &doubled), Approved, "{doubled:?}");
            }
        }
    }

    #[test]
    fn without_approval_first_final_sticks() {
        assert_eq!(fold(Redirected, &[Pending, Declined, Expired]), Declined);
        assert_eq!(fold(Redirected, &[Expired, Pending, Declined]), Expired);
        assert_eq!(fold(Created, &[Pending, Redirected]), Pending);
    }

    #[test]
    fn approved_is_absorbing() {
        for s in PaymentStatus::ALL {
            assert!(!matches!(Approved.apply(s), Transition::Changed { .. }));
        }
    }

    #[test]
    fn changes_never_leave_a_final_state_except_to_approved() {
        for from in PaymentStatus::ALL {
            for to in PaymentStatus::ALL {
                if let Transition::Changed { from: f, to: t } = from.apply(to) {
                    assert_eq!((f, t), (from, to));
                    assert_ne!(f, t);
                    if from.is_final() {
                        assert_eq!(t, Approved);
                    }
                }
            }
        }
    }

    #[test]
    fn predicates() {
        let finals: Vec<_> = PaymentStatus::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, vec![Approved, Declined, Expired]);
        let paid: Vec<_> = PaymentStatus::ALL.into_iter().filter(|s| s.is_paid()).collect();
        assert_eq!(paid, vec![Approved]);
    }

    #[test]
    fn string_roundtrip() {
        let names = ["created", "redirected", "pending", "approved", "declined", "expired"];
        for (s, name) in PaymentStatus::ALL.into_iter().zip(names) {
            assert_eq!(s.as_str(), name);
            assert_eq!(s.to_string(), name);
            assert_eq!(name.parse::<PaymentStatus>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<PaymentStatus>(&format!("\"{name}\"")).unwrap(),
                s
            );
        }
    }

    #[test]
    fn unknown_status() {
        // Stored values are ours and exact; gateway codes are mapped elsewhere.
        for bad in ["", "APPROVED", "paid", " pending"] {
            let err = bad.parse::<PaymentStatus>().unwrap_err();
            assert_eq!(err.0, bad);
            assert_eq!(err.to_string(), format!("unknown payment status {bad}"));
        }
    }
}
