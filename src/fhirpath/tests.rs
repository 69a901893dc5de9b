//! Feature tests of the engine: each evaluates an expression on a small resource and compares
//! the JSON of the result exactly.

use super::{to_json, Expression};

const PATIENT: &str = r##"{"resourceType":"Patient","id":"p1","active":true,"gender":"male","birthDate":"1974-12-25",
"_birthDate":{"extension":[{"url":"http://x/time","valueDateTime":"1974-12-25T14:35:45-05:00"}]},
"name":[{"use":"official","family":"Chalmers","given":["Peter","James"]},{"use":"usual","given":["Jim"]}],
"contained":[{"resourceType":"Organization","id":"o1","name":"Acme"}],"managingOrganization":{"reference":"#o1"}}"##;

const OBSERVATION: &str = r#"{"resourceType":"Observation","id":"o","status":"final",
"code":{"coding":[{"system":"http://loinc.org","code":"29463-7"},{"system":"http://snomed.info/sct","code":"27113001"}]},
"valueQuantity":{"value":185.5,"unit":"lbs","system":"http://unitsofmeasure.org","code":"[lb_av]"},
"effectiveDateTime":"2016-03-28"}"#;

fn eval(resource: &str, expr: &str) -> String {
    let mut bytes = resource.as_bytes().to_vec();
    let tape = simd_json::to_tape(&mut bytes).unwrap();
    let e = Expression::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    match e.evaluate(tape.as_value()) {
        Ok(v) => to_json(&v),
        Err(e) => format!("error {e}"),
    }
}

fn p(expr: &str) -> String {
    eval(PATIENT, expr)
}

#[test]
fn navigation() {
    assert_eq!(p("Patient.name.given"), r#"["Peter","James","Jim"]"#);
    assert_eq!(
        p("name.where(use='official').given.first()"),
        r#"["Peter"]"#
    );
    assert_eq!(p("Observation.status"), "[]");
    assert_eq!(p("Patient.name[1].given"), r#"["Jim"]"#);
    assert_eq!(eval(OBSERVATION, "Observation.value.value"), "[185.5]");
    assert_eq!(
        eval(OBSERVATION, "Observation.effective"),
        r#"["2016-03-28"]"#
    );
    assert_eq!(
        eval(
            OBSERVATION,
            "Observation.code.coding.where(system='http://loinc.org').code"
        ),
        r#"["29463-7"]"#
    );
}

#[test]
fn primitive_extensions_and_types() {
    assert_eq!(
        p("Patient.birthDate.extension('http://x/time').value"),
        r#"["1974-12-25T14:35:45-05:00"]"#
    );
    assert_eq!(p("Patient.birthDate.hasValue()"), "[true]");
    assert_eq!(p("Patient.birthDate < @1975"), "[true]");
    assert_eq!(p("Patient.gender.is(code)"), "[true]");
    assert_eq!(p("Patient.gender.as(string)"), "[]");
    assert_eq!(p("Patient.active.type().name"), r#"["boolean"]"#);
    assert_eq!(
        p("Patient.gender.ofType(string1)"),
        "error at 15: unknown type string1"
    );
    assert_eq!(
        eval(
            OBSERVATION,
            "Observation.value.ofType(Quantity).value > 100"
        ),
        "[true]"
    );
    assert_eq!(eval(OBSERVATION, "Observation.value is Quantity"), "[true]");
    assert_eq!(p("managingOrganization.resolve().name"), r#"["Acme"]"#);
}

#[test]
fn operators_and_literals() {
    assert_eq!(p("1 + 2 * 3"), "[7]");
    assert_eq!(p("1 / 3"), "[0.33333333]");
    assert_eq!(p("0.1 + 0.2 = 0.3"), "[true]");
    assert_eq!(p("'a' & {} & 'b'"), r#"["ab"]"#);
    assert_eq!(p("@2012-04 = @2012-04-15"), "[]");
    assert_eq!(p("@1973-12-25 + 7 days"), r#"["1974-01-01"]"#);
    assert_eq!(p("4 'g' = 4000 'mg'"), "[true]");
    assert_eq!(p("7 days = 1 week"), "[true]");
    assert_eq!(p("(1 | 2 | 2).count()"), "[2]");
    assert_eq!(p("{} and false"), "[false]");
    assert_eq!(p("{} or false"), "[]");
    assert_eq!(p("'abc' ~ 'ABC'"), "[true]");
    assert_eq!(
        p("1 < 'a'"),
        "error at 2: cannot compare Integer with String"
    );
    assert_eq!(p("Patient.name.given = 'Peter'"), "[false]");
    assert_eq!(
        p("Patient.name.given < 'x'"),
        "error at 19: a comparison expects a single item, found 3"
    );
}

#[test]
fn functions() {
    assert_eq!(p("Patient.name.given.count()"), "[3]");
    assert_eq!(p("(1 | 2 | 3).aggregate($this + $total, 0)"), "[6]");
    assert_eq!(p("'a,b'.split(',').join('|')"), r#"["a|b"]"#);
    assert_eq!(p("'abc'.substring(1)"), r#"["bc"]"#);
    assert_eq!(p("'abc'.matches('^a.c$')"), "[true]");
    assert_eq!(p("'a1b2'.replaceMatches('[0-9]', '#')"), r#"["a#b#"]"#);
    assert_eq!(p("iif(true, 1, 2)"), "[1]");
    assert_eq!(p("'5'.toInteger() + 1"), "[6]");
    assert_eq!(p("1 week.toString()"), r#"["1 week"]"#);
    assert_eq!(
        p("2.5 'mg'"),
        r#"[{"value":2.5,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}]"#
    );
    assert_eq!(p("16.log(2)"), "[4]");
    assert_eq!(p("2.power(10)"), "[1024]");
    assert_eq!(p("(1 | 2).single()"), "error at 8: single() found 2 items");
    assert_eq!(p("name.select(given.take(1))"), r#"["Peter","Jim"]"#);
    assert_eq!(p("contained.children().count()"), "[2]");
    assert_eq!(p("%resource.id"), r#"["p1"]"#);
    assert_eq!(p("%loinc"), r#"["http://loinc.org"]"#);
    assert_eq!(
        p("%`vs-administrative-gender`"),
        r#"["http://hl7.org/fhir/ValueSet/administrative-gender"]"#
    );
}

#[test]
fn expressions_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Expression>();
}

const WITH_CONTACT: &str = r#"{"resourceType":"Patient","id":"c","birthDate":"1980",
"contact":[{"name":{"family":"Du"},"period":{"start":"2012"}}],
"extension":[{"url":"http://x/age","valueAge":{"value":40,"unit":"a","system":"http://unitsofmeasure.org","code":"a"}}]}"#;

const OBSERVATION_PERIOD: &str = r#"{"resourceType":"Observation","id":"op","status":"final",
"code":{"text":"x"},"effectivePeriod":{"start":"2016-03-28T10:00:00Z"},
"component":[{"code":{"text":"c"},"valueQuantity":{"value":2,"code":"mg"},
"referenceRange":[{"low":{"value":1}}]}]}"#;

/// Issue 3: FHIR resources are evaluated with the R4 model, so element types are exact.
#[test]
fn r4_model_types_issue_3() {
    assert_eq!(p("Patient.birthDate is date"), "[true]");
    assert_eq!(p("Patient.birthDate.is(FHIR.date)"), "[true]");
    assert_eq!(p("Patient.birthDate is dateTime"), "[false]");
    assert_eq!(
        p("Patient.descendants().where(is(FHIR.date))"),
        r#"["1974-12-25"]"#
    );
    assert_eq!(
        p("Patient.descendants().where(is(FHIR.dateTime))"),
        r#"["1974-12-25T14:35:45-05:00"]"#
    );
    assert_eq!(p("Patient.id is id"), "[true]");
    assert_eq!(p("Patient.id is string"), "[true]");
    assert_eq!(p("Patient.name.first().type().name"), r#"["HumanName"]"#);
    assert_eq!(p("Patient.contained.first() is DomainResource"), "[true]");
    assert_eq!(p("Patient.contained.first().name is string"), "[true]");
    assert_eq!(p("Patient is Resource"), "[true]");
    assert_eq!(
        eval(WITH_CONTACT, "Patient.contact.type().name"),
        r#"["BackboneElement"]"#
    );
    assert_eq!(
        eval(WITH_CONTACT, "Patient.contact.period.start is dateTime"),
        "[true]"
    );
    assert_eq!(
        eval(WITH_CONTACT, "Patient.contact.period.start < @2013"),
        "[true]"
    );
    assert_eq!(
        eval(WITH_CONTACT, "Patient.birthDate.type().name"),
        r#"["date"]"#
    );
    assert_eq!(
        eval(WITH_CONTACT, "Patient.extension.value is Age"),
        "[true]"
    );
    assert_eq!(
        eval(WITH_CONTACT, "Patient.extension.value is Quantity"),
        "[true]"
    );
    assert_eq!(
        eval(WITH_CONTACT, "Patient.extension.value is Duration"),
        "[false]"
    );
    assert_eq!(
        eval(
            OBSERVATION,
            "Observation.effective.ofType(dateTime) < @2017"
        ),
        "[true]"
    );
    assert_eq!(
        eval(OBSERVATION_PERIOD, "Observation.effective.ofType(dateTime)"),
        "[]"
    );
    assert_eq!(
        eval(
            OBSERVATION_PERIOD,
            "Observation.effective.start > @2016-03-01"
        ),
        "[true]"
    );
    assert_eq!(
        eval(OBSERVATION_PERIOD, "Observation.effective is Period"),
        "[true]"
    );
    // Content reference: component.referenceRange is Observation.referenceRange.
    assert_eq!(
        eval(
            OBSERVATION_PERIOD,
            "Observation.component.referenceRange.low.value is decimal"
        ),
        "[true]"
    );
    assert_eq!(
        eval(OBSERVATION_PERIOD, "Observation.component.value > 1 'mg'"),
        "[true]"
    );
    // JSON that is not a FHIR resource keeps the shape-based fallback.
    assert_eq!(eval(r#"{"a":{"b":"2020"}}"#, "a.b is string"), "[true]");
}

/// Issue 3: user variables besides the built-in ones.
#[test]
fn user_variables_issue_3() {
    use super::{default_types, Env, Item, VarError};
    let mut bytes = OBSERVATION.as_bytes().to_vec();
    let tape = simd_json::to_tape(&mut bytes).unwrap();
    let obs = tape.as_value();
    let mut env = Env::new();
    env.set_str("system", "http://loinc.org")
        .unwrap()
        .set("limit", vec![Item::Int(100)])
        .unwrap();
    let run = |src: &str| match Expression::parse(src).unwrap().evaluate_with_env(
        obs,
        default_types(obs),
        &env,
    ) {
        Ok(v) => to_json(&v),
        Err(e) => format!("error {e}"),
    };
    assert_eq!(
        run("Observation.code.coding.where(system = %system).code"),
        r#"["29463-7"]"#
    );
    assert_eq!(run("Observation.value.value > %limit"), "[true]");
    assert_eq!(run("%loinc = %system"), "[true]");
    assert_eq!(run("%resource.id"), r#"["o"]"#);
    assert_eq!(
        run("Observation.status = %missing"),
        "error at 21: undefined variable %missing"
    );
    assert_eq!(
        env.set_str("resource", "x").unwrap_err(),
        VarError::Reserved("resource".into())
    );
    assert_eq!(
        env.set_str("vs-x", "x").unwrap_err().to_string(),
        "%vs-x is defined by FHIRPath and cannot be set"
    );
    assert_eq!(
        env.set_str("", "x").unwrap_err().to_string(),
        "invalid variable name \"\""
    );
    // The plain API has no user variables.
    let e = Expression::parse("%system").unwrap();
    assert_eq!(
        e.evaluate(obs).unwrap_err().to_string(),
        "at 0: undefined variable %system"
    );
}

/// Issue 3: strict mode finds the suite's semantic errors statically, with the R4 model.
#[test]
fn strict_check_issue_3() {
    use super::R4TypeInfo;
    let r4 = R4TypeInfo::new();
    let check = |ctx: &str, src: &str| match Expression::parse(src).unwrap().check(ctx, &r4) {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        check("Patient", "name.given1"),
        "at 5: HumanName has no element given1"
    );
    assert_eq!(
        check("Patient", "Encounter.name.given"),
        "at 0: the path starts with Encounter but the context is Patient"
    );
    assert_eq!(
        check("Observation", "Observation.valueQuantity.unit"),
        "at 12: valueQuantity is a choice variant: navigate Observation.value (with ofType() to pick a type)"
    );
    assert_eq!(
        check("Observation", "(Observation.value as Period).unit"),
        "at 30: Period has no element unit"
    );
    assert_eq!(
        check("Patient", "Patient.children().skip(1)"),
        "at 19: skip() on the unordered result of children()/descendants()"
    );
    assert_eq!(
        check("Patient", "Patient.contact.name.where(given1 = 'x')"),
        "at 27: HumanName has no element given1"
    );
    for ok in [
        "Patient.name.where(use = 'official').given.first()",
        "Patient.contained.ofType(Organization).name",
        "Patient.descendants().where(is(FHIR.date))",
        "Patient.birthDate.extension.value",
        "Patient.name.skip(1).given",
        "Resource.id",
        "DomainResource.text.div",
    ] {
        assert_eq!(check("Patient", ok), "ok", "{ok}");
    }
    assert_eq!(
        check("Observation", "Observation.value.ofType(Quantity).unit"),
        "ok"
    );
    // Without the model nothing is known, so nothing is reported.
    assert_eq!(
        Expression::parse("name.given1")
            .unwrap()
            .check("Patient", &super::Fallback),
        Ok(())
    );
}

#[test]
fn conforms_to_and_sort_with_empty_keys() {
    assert_eq!(
        p("conformsTo('http://hl7.org/fhir/StructureDefinition/Patient')"),
        "[true]"
    );
    assert_eq!(
        p("conformsTo('http://hl7.org/fhir/StructureDefinition/DomainResource')"),
        "[true]"
    );
    assert_eq!(
        p("conformsTo('http://hl7.org/fhir/StructureDefinition/Person')"),
        "[false]"
    );
    assert_eq!(
        p("conformsTo('http://x/p')"),
        "error at 0: conformsTo() can check the base definitions of R4 types only, not http://x/p"
    );
    // An empty key sorts first, also in descending order.
    assert_eq!(
        p("Patient.name.sort(-family).use"),
        r#"["usual","official"]"#
    );
    assert_eq!(
        p("Patient.name.sort(family).use"),
        r#"["usual","official"]"#
    );
}
