use chrono::{NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use super::*;

const WEEKDAYS: [Weekday; 5] = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().timestamp_millis()
}

fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    tz.with_ymd_and_hms(y, mo, d, h, mi, s)
        .earliest()
        .unwrap()
        .timestamp_millis()
}

fn bogota(holidays: &[NaiveDate]) -> BusinessHours {
    BusinessHours::new(
        Tz::America__Bogota,
        &WEEKDAYS,
        9 * 60,
        18 * 60,
        holidays.iter().copied(),
    )
    .unwrap()
}

const BOG: Tz = Tz::America__Bogota;

#[test]
fn outside_hours_moves_to_the_next_opening() {
    let h = bogota(&[]);
    // 2026-12-04 is a Friday; Bogotá is UTC-5.
    let monday_9 = utc(2026, 12, 7, 14, 0);
    assert_eq!(h.next_open(local(BOG, 2026, 12, 4, 19, 0, 0)), monday_9);
    assert_eq!(h.next_open(local(BOG, 2026, 12, 5, 10, 0, 0)), monday_9);
    assert_eq!(h.next_open(local(BOG, 2026, 12, 6, 23, 59, 59)), monday_9);
    // Before opening on a weekday: that morning.
    assert_eq!(h.next_open(local(BOG, 2026, 12, 8, 6, 0, 0)), utc(2026, 12, 8, 14, 0));
}

#[test]
fn inside_hours_is_unchanged_and_close_is_exclusive() {
    let h = bogota(&[]);
    for at in [
        local(BOG, 2026, 12, 4, 9, 0, 0),
        local(BOG, 2026, 12, 4, 12, 34, 56) + 789,
        local(BOG, 2026, 12, 4, 17, 59, 59) + 999,
    ] {
        assert_eq!(h.next_open(at), at);
    }
    assert_eq!(h.next_open(local(BOG, 2026, 12, 4, 18, 0, 0)), utc(2026, 12, 7, 14, 0));
}

#[test]
fn holidays_are_closed_all_day() {
    let monday = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let h = bogota(&[monday]);
    assert_eq!(h.next_open(local(BOG, 2026, 12, 4, 19, 0, 0)), utc(2026, 12, 8, 14, 0));
    assert_eq!(h.next_open(local(BOG, 2026, 12, 7, 11, 0, 0)), utc(2026, 12, 8, 14, 0));
}

#[test]
fn always_is_open_at_every_instant() {
    let h = BusinessHours::always();
    for at in [0, utc(2026, 12, 5, 3, 0), utc(2026, 12, 6, 23, 59) + 59_999] {
        assert_eq!(h.next_open(at), at);
    }
    assert_eq!(h.timezone(), Tz::UTC);
}

#[test]
fn spring_forward_weekend_opens_on_monday_daylight_time() {
    // New York springs forward on Sunday 2026-03-08: Friday is UTC-5, Monday UTC-4.
    let ny = Tz::America__New_York;
    let h = BusinessHours::new(ny, &WEEKDAYS, 9 * 60, 18 * 60, []).unwrap();
    assert_eq!(h.next_open(local(ny, 2026, 3, 6, 19, 0, 0)), utc(2026, 3, 9, 13, 0));
}

#[test]
fn an_opening_in_the_spring_forward_gap_opens_at_the_gap_end() {
    // 02:30 does not exist on 2026-03-08 in New York: 02:00 EST is followed by 03:00 EDT.
    let ny = Tz::America__New_York;
    let h = BusinessHours::new(ny, &[Weekday::Sun], 2 * 60 + 30, 18 * 60, []).unwrap();
    assert_eq!(h.next_open(utc(2026, 3, 8, 6, 0)), utc(2026, 3, 8, 7, 0));
}

#[test]
fn an_opening_repeated_by_fall_back_opens_at_its_first_occurrence() {
    // 01:30 happens twice on 2026-11-01 in New York: first at UTC-4, then at UTC-5.
    let ny = Tz::America__New_York;
    let h = BusinessHours::new(ny, &[Weekday::Sun], 90, 18 * 60, []).unwrap();
    assert_eq!(h.next_open(utc(2026, 11, 1, 4, 30)), utc(2026, 11, 1, 5, 30));
    // 01:10 on the repeated hour comes after the first 01:30: already open.
    let second_0110 = utc(2026, 11, 1, 6, 10);
    assert_eq!(h.next_open(second_0110), second_0110);
}

#[test]
fn madrid_change_lands_on_the_right_utc_instant() {
    // Madrid springs forward on 2026-03-29 (UTC+1 to UTC+2).
    let m = Tz::Europe__Madrid;
    let h = BusinessHours::new(m, &WEEKDAYS, 9 * 60, 18 * 60, []).unwrap();
    assert_eq!(h.next_open(utc(2026, 3, 27, 18, 0)), utc(2026, 3, 30, 7, 0));
}

#[test]
fn search_is_bounded_when_holidays_cover_every_open_day() {
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let all = start.iter_days().take(800);
    let h = BusinessHours::new(BOG, &WEEKDAYS, 9 * 60, 18 * 60, all).unwrap();
    let at = utc(2026, 1, 2, 12, 0);
    assert_eq!(h.next_open(at), at);
    assert_eq!(h.next_open(i64::MAX), i64::MAX);
}

#[test]
fn odd_hours_are_refused() {
    assert_eq!(BusinessHours::new(BOG, &[], 0, 60, []), Err(HoursError::NoOpenDay));
    for (open, close) in [(600, 600), (700, 600), (0, 1441)] {
        assert_eq!(
            BusinessHours::new(BOG, &WEEKDAYS, open, close, []),
            Err(HoursError::OpenNotBeforeClose),
            "{open}-{close}"
        );
    }
}

fn sample(v: Var) -> String {
    format!("<{}>", v.as_str())
}

#[test]
fn every_placeholder_renders() {
    let text: String = Var::ALL.iter().map(|v| format!("{v}|")).collect();
    let t = Template::parse(&text).unwrap();
    let want: String = Var::ALL.iter().map(|v| format!("<{}>|", v.as_str())).collect();
    assert_eq!(t.render(&sample), want);
    for v in Var::ALL {
        assert!(t.uses(v), "{v}");
        assert_eq!(Var::from_name(v.as_str()), Some(v));
        assert!(!v.describe().is_empty());
    }
    assert!(!Template::parse("Hola {name}").unwrap().uses(Var::Email));
}

#[test]
fn doubled_braces_are_literal_and_values_are_not_expanded() {
    let t = Template::parse("{{name}} is {name}}}").unwrap();
    assert_eq!(t.render(&|_| "{email}".into()), "{name} is {email}}");
    assert!(t.uses(Var::Name));
}

#[test]
fn bad_templates_name_the_problem() {
    let e = Template::parse("Hola {nombre}").unwrap_err();
    assert_eq!(e, TemplateError::UnknownPlaceholder { name: "nombre".into() });
    let msg = e.to_string();
    assert!(
        msg.starts_with("unknown placeholder {nombre} (valid: {name}, {first_name},"),
        "{msg}"
    );
    assert!(msg.ends_with("{resume_link}, {reference})"), "{msg}");
    assert_eq!(
        Template::parse("Hola {name").unwrap_err(),
        TemplateError::Unclosed { at: 6 }
    );
    assert_eq!(
        Template::parse("a } b").unwrap_err(),
        TemplateError::UnmatchedClose { at: 3 }
    );
    assert_eq!(
        Template::parse("{}").unwrap_err(),
        TemplateError::UnknownPlaceholder { name: String::new() }
    );
    assert!(Template::parse("the `{` at")
        .unwrap_err()
        .to_string()
        .contains("never closed"));
}

#[test]
fn built_in_texts_parse_and_task_bodies_carry_every_fact() {
    let facts = [
        Var::Name,
        Var::Email,
        Var::Phone,
        Var::TelLink,
        Var::WhatsappLink,
        Var::Offer,
        Var::Amount,
        Var::Ago,
        Var::Attempts,
        Var::History,
        Var::UtmSource,
        Var::UtmCampaign,
        Var::ResumeLink,
    ];
    for lang in Lang::ALL {
        for body in [
            texts::step_body(StepKind::Call),
            texts::step_body(StepKind::Task),
            texts::declined_body(),
        ] {
            for v in facts {
                assert!(body.get(lang).uses(v), "{lang:?} lacks {v}");
            }
        }
        assert!(texts::declined_body().get(lang).uses(Var::Reason));
        assert!(texts::step_body(StepKind::Email).get(lang).uses(Var::ResumeLink));
        assert!(texts::receipt_body(lang).uses(Var::Amount) && texts::receipt_body(lang).uses(Var::Offer));
        assert!(texts::whatsapp_message(lang).uses(Var::FirstName));
        assert!(texts::paid_close_note(lang).uses(Var::Amount));
        assert!(!texts::abandoned_stage_note(lang).render(&sample).is_empty());
        assert!(!texts::receipt_subject(lang).render(&sample).is_empty());
    }
    let es = texts::step_body(StepKind::Call).get(Lang::Es).render(&sample);
    assert!(es.starts_with("Estado del pago: <status>\nNombre: <name>\n"), "{es}");
    assert!(
        es.contains("Intento iniciado: hace <ago>\n") && es.ends_with("Historial:\n<history>"),
        "{es}"
    );
    let en = texts::step_subject(StepKind::Call).get(Lang::En).render(&sample);
    assert_eq!(en, "Call <name>: payment not completed (<offer>)");
}

#[test]
fn legacy_policy_is_one_call_per_delay_and_a_high_call_on_decline() {
    let p = Policy::default_for(&[Duration::from_secs(86_400), Duration::from_secs(1800)]);
    let afters: Vec<u64> = p.steps.iter().map(|s| s.after.as_secs()).collect();
    assert_eq!(afters, [1800, 86_400]);
    for s in &p.steps {
        assert_eq!(
            (s.kind, s.priority, &s.owner),
            (StepKind::Call, Priority::Normal, &OwnerRule::DealOwner)
        );
        assert_eq!(&s.subject, texts::step_subject(StepKind::Call));
    }
    let d = p.declined.as_ref().unwrap();
    assert_eq!((d.kind, d.priority), (StepKind::Call, Priority::High));
    assert_eq!(&d.body, texts::declined_body());
    assert_eq!(p.hours, BusinessHours::always());
    assert_eq!(p.close_tasks, CloseTask::Complete);
    assert_eq!(p.after_last_step, AfterLastStep::Stay);
    assert!(!p.receipt_email);
    assert_eq!(p.email_consent, ConsentRule::NotRequired);
    assert!(Policy::default_for(&[]).steps.is_empty());
}
