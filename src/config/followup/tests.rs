use std::time::Duration;

use super::super::Settings;
use crate::domain::followup::{
    texts, AfterLastStep, CloseTask, ConsentRule, OwnerRule, Policy, Priority, StepKind, Template,
};
use crate::domain::offer::Offer;
use crate::domain::Lang;

const OFFER: &str = "[[offers]]\nslug = \"curso\"\ntitle = \"Curso\"\nprice_minor = 100000\ncurrency = \"COP\"\n";

fn no_env(_: &str) -> Option<String> {
    None
}

/// A mail server, which email steps and receipts need.
const MAIL: &str = "[email]\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"ventas@acme.test\"\n";

fn settings(toml: &str) -> Result<Settings, Vec<String>> {
    Settings::from_toml(&format!("{toml}\n{MAIL}"), &no_env).map_err(|e| e.0)
}

fn policy_of<'a>(s: &'a Settings, slug: &str) -> &'a Policy {
    let offer: &Offer = s.offers.iter().find(|o| o.slug.as_str() == slug).unwrap();
    &offer.followup
}

fn afters(p: &Policy) -> Vec<u64> {
    p.steps.iter().map(|s| s.after.as_secs()).collect()
}

/// 2026-12-04 is a Friday; Bogotá is UTC-5.
fn bogota_ms(d: u32, h: u32) -> i64 {
    use chrono::TimeZone;
    let t = chrono_tz::Tz::America__Bogota.with_ymd_and_hms(2026, 12, d, h, 0, 0);
    t.single().unwrap().timestamp_millis()
}

const FULL: &str = r#"
[followup]
timezone = "America/Bogota"
days = ["mon","tue","wed","thu","fri"]
hours = "09:00-18:00"
holidays = ["2026-12-08"]
close_tasks = "delete"
after_last_step = "stage: Abandonado "
receipt_email = true
email_consent = "required"

[[followup.steps]]
after = "24h"
kind = "email"

[[followup.steps]]
after = "30m"
kind = "call"
priority = "high"
owner = ["ana@example.com", 12345]
subject.es = "Llamar a {name} ya"

[[followup.steps]]
after = "2h"
kind = "task"
priority = "low"
owner = "luis@example.com"

[followup.declined]
kind = "task"
owner = "deal"
body.en = "Declined: {reason}"
"#;

#[test]
fn the_full_example_parses() {
    let s = settings(&format!("{FULL}\n{OFFER}")).unwrap();
    let p = policy_of(&s, "curso");
    assert_eq!(afters(p), [1800, 7200, 86_400]);
    let [call, task, email] = &p.steps[..] else {
        panic!("{:?}", p.steps)
    };
    assert_eq!((call.kind, call.priority), (StepKind::Call, Priority::High));
    assert_eq!(
        call.owner,
        OwnerRule::RoundRobin(vec!["ana@example.com".into(), "12345".into()])
    );
    assert_eq!(
        call.subject.get(Lang::Es),
        &Template::parse("Llamar a {name} ya").unwrap()
    );
    assert_eq!(
        call.subject.get(Lang::En),
        texts::step_subject(StepKind::Call).get(Lang::En)
    );
    assert_eq!(&call.body, texts::step_body(StepKind::Call));
    assert_eq!((task.kind, task.priority), (StepKind::Task, Priority::Low));
    assert_eq!(task.owner, OwnerRule::User("luis@example.com".into()));
    assert_eq!(
        (email.kind, email.priority, &email.owner),
        (StepKind::Email, Priority::Normal, &OwnerRule::DealOwner)
    );
    assert_eq!(&email.body, texts::step_body(StepKind::Email));
    let d = p.declined.as_ref().unwrap();
    assert_eq!((d.kind, d.priority), (StepKind::Task, Priority::High));
    assert_eq!(d.body.get(Lang::En), &Template::parse("Declined: {reason}").unwrap());
    assert_eq!(d.body.get(Lang::Es), texts::declined_body().get(Lang::Es));
    assert_eq!(p.close_tasks, CloseTask::Delete);
    assert_eq!(p.after_last_step, AfterLastStep::Stage("Abandonado".into()));
    assert!(p.receipt_email);
    assert_eq!(p.email_consent, ConsentRule::Required);
    assert_eq!(p.hours.timezone(), chrono_tz::Tz::America__Bogota);
    // Friday evening waits for Monday; Tuesday the 8th is a holiday.
    assert_eq!(p.hours.next_open(bogota_ms(4, 19)), bogota_ms(7, 9));
    assert_eq!(p.hours.next_open(bogota_ms(8, 10)), bogota_ms(9, 9));
}

#[test]
fn an_offer_overrides_only_the_keys_it_sets() {
    let toml = format!(
        "{FULL}\n{OFFER}\n[offers.followup]\nhours = \"10:00-16:00\"\nreceipt_email = false\n\
         [[offers.followup.steps]]\nafter = \"1h\"\n\n\
         [[offers]]\nslug = \"otro\"\ntitle = \"Otro\"\nprice_minor = 100000\ncurrency = \"COP\"\n"
    );
    let s = settings(&toml).unwrap();
    let p = policy_of(&s, "curso");
    assert_eq!(afters(p), [3600]);
    assert_eq!(p.steps[0].kind, StepKind::Call);
    assert!(!p.receipt_email);
    assert_eq!(p.hours.timezone(), chrono_tz::Tz::America__Bogota);
    assert_eq!(p.hours.next_open(bogota_ms(4, 9)), bogota_ms(4, 10));
    assert_eq!(p.hours.next_open(bogota_ms(4, 16)), bogota_ms(7, 10));
    assert_eq!(p.close_tasks, CloseTask::Delete);
    assert_eq!(p.declined.as_ref().map(|d| d.kind), Some(StepKind::Task));
    let other = policy_of(&s, "otro");
    assert_eq!(afters(other), [1800, 7200, 86_400]);
    assert!(other.receipt_email);
}

#[test]
fn declined_can_be_turned_off() {
    let s = settings(&format!("{OFFER}[offers.followup.declined]\nenabled = false\n")).unwrap();
    assert_eq!(policy_of(&s, "curso").declined, None);
}

#[test]
fn without_a_policy_the_legacy_delays_apply() {
    let s = settings("").unwrap();
    assert_eq!(afters(policy_of(&s, "demo")), [1800, 86_400]);
    let s = settings(OFFER).unwrap();
    assert_eq!(
        *policy_of(&s, "curso"),
        Policy::default_for(&[Duration::from_secs(1800)])
    );
    let s = settings(&format!("{OFFER}followup_delays = [\"24h\", \"1h\"]\n")).unwrap();
    assert_eq!(
        *policy_of(&s, "curso"),
        Policy::default_for(&[Duration::from_secs(3600), Duration::from_secs(86_400)])
    );
    // An offer's own delays win over the default steps; the rest of [followup] still applies.
    let s = settings(&format!("{FULL}\n{OFFER}followup_delays = [\"1h\"]\n")).unwrap();
    let p = policy_of(&s, "curso");
    assert_eq!(afters(p), [3600]);
    assert_eq!(p.close_tasks, CloseTask::Delete);
    // The demo shows configured steps rather than its own delays.
    let s = settings("[[followup.steps]]\nafter = \"5m\"\n").unwrap();
    assert_eq!(afters(policy_of(&s, "demo")), [300]);
    let s = settings("[followup]\nsteps = []\n").unwrap();
    assert!(policy_of(&s, "demo").steps.is_empty());
}

#[test]
fn each_mistake_is_one_line_naming_its_setting() {
    let cases: &[(&str, &str)] = &[
        (
            "[followup]\ntimezone = \"Bogota\"",
            "followup.timezone: \"Bogota\" is not an IANA time zone such as \"America/Bogota\"",
        ),
        (
            "[followup]\ndays = [\"mon\", \"lun\"]",
            "followup.days[1]: \"lun\" is not a day (mon, tue, wed, thu, fri, sat, sun)",
        ),
        ("[followup]\ndays = []", "followup.days: at least one day must be open"),
        (
            "[followup]\nhours = \"9-18\"",
            "followup.hours: \"9-18\" is not HH:MM-HH:MM such as \"09:00-18:00\"",
        ),
        (
            "[followup]\nhours = \"09:00-24:30\"",
            "followup.hours: \"09:00-24:30\" is not HH:MM-HH:MM such as \"09:00-18:00\"",
        ),
        (
            "[followup]\nhours = \"18:00-09:00\"",
            "followup.hours: \"18:00-09:00\" opens at or after it closes (overnight hours are not supported)",
        ),
        (
            "[followup]\nholidays = [\"25/12/2026\"]",
            "followup.holidays[0]: \"25/12/2026\" is not a date such as \"2026-12-25\"",
        ),
        (
            "[followup]\nclose_tasks = \"archive\"",
            "followup.close_tasks: \"archive\" is not \"complete\" or \"delete\"",
        ),
        (
            "[followup]\nafter_last_step = \"stage: \"",
            "followup.after_last_step: the stage name is empty (e.g. \"stage:Abandoned\")",
        ),
        (
            "[followup]\nafter_last_step = \"lost\"",
            "followup.after_last_step: \"lost\" is not \"stay\" or \"stage:<open stage name>\"",
        ),
        (
            "[followup]\nemail_consent = \"maybe\"",
            "followup.email_consent: \"maybe\" is not \"not_required\" or \"required\"",
        ),
        (
            "[[followup.steps]]\nafter = \"1h\"\nkind = \"sms\"",
            "followup.steps[0].kind: \"sms\" is not call, task or email",
        ),
        (
            "[[followup.steps]]\nafter = \"1h\"\npriority = \"urgent\"",
            "followup.steps[0].priority: \"urgent\" is not low, normal or high",
        ),
        (
            "[[followup.steps]]\nafter = \"1h\"\nowner = []",
            "followup.steps[0].owner: the round-robin list is empty",
        ),
        (
            "[[followup.steps]]\nafter = \"1h\"\nowner = true",
            "followup.steps[0].owner: expected \"deal\", a CRM user's id or email, or a list of them",
        ),
        (
            "[[followup.steps]]\nafter = \"1h\"\nowner = [\"a@example.com\", \" \"]",
            "followup.steps[0].owner[1]: expected a CRM user's id or email",
        ),
        (
            "[[followup.steps]]\nafter = \"1h\"\nsubject.fr = \"Salut\"",
            "followup.steps[0].subject.fr: unknown language (es, pt-BR, en)",
        ),
        (
            "[followup.declined]\nkind = \"fax\"",
            "followup.declined.kind: \"fax\" is not call, task or email",
        ),
        (
            "[followup.declined]\nbody.es = \"Motivo: {reason\"",
            "followup.declined.body.es: the `{` at character 9 is never closed (write `{{` for a literal brace)",
        ),
    ];
    for (toml, want) in cases {
        // Two offers: a mistake in [followup] is still reported once.
        let two =
            format!("{toml}\n{OFFER}\n[[offers]]\nslug = \"b\"\ntitle = \"B\"\nprice_minor = 1\ncurrency = \"USD\"\n");
        assert_eq!(settings(&two).unwrap_err(), [want.to_string()], "{toml}");
    }
}

#[test]
fn mistakes_in_steps_and_offers_name_their_path() {
    let cases: &[(&str, &str)] = &[
        (
            "[[followup.steps]]\nafter = \"30 parsecs\"",
            "followup.steps[0].after: ",
        ),
        (
            "[[followup.steps]]\nafter = \"1h\"\n[[followup.steps]]\nafter = \"2h\"\nbody.en = \"Hi {nombre}\"",
            "followup.steps[1].body.en: unknown placeholder {nombre} (valid: {name}, {first_name}, ",
        ),
        (
            &format!("{OFFER}[[offers.followup.steps]]\nafter = \"soon\""),
            "offers[0].followup.steps[0].after: ",
        ),
        (
            &format!("{OFFER}followup_delays = [\"30 parsecs\"]"),
            "offers[0].followup_delays[0]: ",
        ),
        (
            &format!("{OFFER}followup_delays = [\"1h\"]\n[[offers.followup.steps]]\nafter = \"2h\""),
            "offers[0].followup_delays: cannot be combined with followup.steps",
        ),
        (
            &format!("{OFFER}[offers.followup]\ntimezone = \"Mars/Olympus\""),
            "offers[0].followup.timezone: \"Mars/Olympus\" is not an IANA time zone",
        ),
    ];
    for (toml, want) in cases {
        let errs = settings(toml).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with(want), "{toml}: {errs:?}");
        assert!(!errs[0].contains('\n'), "{errs:?}");
    }
}

#[test]
fn every_mistake_of_a_step_is_reported_at_once() {
    let toml = "[[followup.steps]]\nafter = \"soon\"\nkind = \"sms\"\nsubject.es = \"{x}\"\nbody.fr = \"\"";
    let errs = settings(toml).unwrap_err();
    let keys: Vec<&str> = errs.iter().filter_map(|e| e.split(':').next()).collect();
    assert_eq!(
        keys,
        [
            "followup.steps[0].after",
            "followup.steps[0].kind",
            "followup.steps[0].subject.es",
            "followup.steps[0].body.fr"
        ]
    );
}

#[test]
fn unknown_keys_are_refused() {
    for toml in ["[followup]\ntimezon = \"UTC\"", "[followup.declined]\nafter = \"1h\""] {
        let errs = settings(toml).unwrap_err();
        assert!(
            errs[0].starts_with("line ") && errs[0].contains("unknown field"),
            "{errs:?}"
        );
    }
}
