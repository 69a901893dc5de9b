//! Tests of the XML → JSON conversion: exact JSON for each rule, errors naming the path.

use super::*;

fn json(xml: &str) -> String {
    resource_to_json(xml).unwrap_or_else(|e| format!("error {e}"))
}

#[test]
fn cardinality_primitives_and_extensions() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="x">
  <id value="p1"/>
  <active value="true"/>
  <name>
    <use value="official"/>
    <family value="Chalmers &amp; Co"/>
    <given value="Peter"/>
    <given id="g2">
      <extension url="http://x/e"><valueString value="J"/></extension>
    </given>
  </name>
  <birthDate value="1974-12-25">
    <extension url="http://x/time"><valueDateTime value="1974-12-25T14:35:45-05:00"/></extension>
  </birthDate>
  <multipleBirthInteger value="2"/>
</Patient>"#;
    assert_eq!(
        json(xml),
        concat!(
            r#"{"resourceType":"Patient","id":"p1","active":true,"#,
            r#""name":[{"use":"official","family":"Chalmers & Co","given":["Peter",null],"#,
            r#""_given":[null,{"id":"g2","extension":[{"url":"http://x/e","valueString":"J"}]}]}],"#,
            r#""birthDate":"1974-12-25","#,
            r#""_birthDate":{"extension":[{"url":"http://x/time","valueDateTime":"1974-12-25T14:35:45-05:00"}]},"#,
            r#""multipleBirthInteger":2}"#
        )
    );
}

#[test]
fn decimals_narrative_contained_and_backbones() {
    let xml = r#"<Observation xmlns="http://hl7.org/fhir">
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>a &lt; <b>b</b> &#39;c&#39; &#x3c; &quot;d&quot; &#233;</p></div></text>
  <contained><Patient><id value="p"/></Patient></contained>
  <status value="final"/>
  <code><text value="x"/></code>
  <valueQuantity><value value="1.50"/><unit value="mg"/></valueQuantity>
  <referenceRange><low><value value="-0.5e1"/></low></referenceRange>
  <component><code><text value="c"/></code><valueBoolean value="false"/></component>
</Observation>"#;
    assert_eq!(
        json(xml),
        concat!(
            r#"{"resourceType":"Observation","#,
            r#""text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>a &lt; <b>b</b> 'c' &lt; &quot;d&quot; é</p></div>"},"#,
            r#""contained":[{"resourceType":"Patient","id":"p"}],"status":"final","code":{"text":"x"},"#,
            r#""valueQuantity":{"value":1.50,"unit":"mg"},"referenceRange":[{"low":{"value":-0.5e1}}],"#,
            r#""component":[{"code":{"text":"c"},"valueBoolean":false}]}"#
        )
    );
}

#[test]
fn bundle_entries_hold_resources() {
    let xml = r#"<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/>
<entry><fullUrl value="urn:a"/><resource><Patient><gender value="male"/></Patient></resource></entry>
</Bundle>"#;
    assert_eq!(
        json(xml),
        r#"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:a","resource":{"resourceType":"Patient","gender":"male"}}]}"#
    );
}

#[test]
fn errors_name_the_path() {
    assert_eq!(
        json("<Patient><nickname value=\"x\"/></Patient>"),
        "error Patient.nickname: unknown element nickname"
    );
    assert_eq!(
        json("<Patient><active value=\"yes\"/></Patient>"),
        "error Patient.active: \"yes\" is not a boolean"
    );
    assert_eq!(
        json("<Patient><gender value=\"a\"/><gender value=\"b\"/></Patient>"),
        "error Patient.gender: appears 2 times but repeats at most once"
    );
    assert_eq!(
        json("<Person2><id value=\"x\"/></Person2>"),
        "error Person2: Person2 is not an R4 resource type"
    );
    assert_eq!(
        json("<Observation><valueQuantity><value value=\"1,5\"/></valueQuantity></Observation>"),
        "error Observation.valueQuantity.value: \"1,5\" is not a decimal"
    );
    assert!(
        json("<Patient><id value=\"x\"></Patient>").starts_with("error XML syntax error at byte"),
        "{}",
        json("<Patient><id value=\"x\"></Patient>")
    );
    assert_eq!(
        json(
            r#"<Patient><text><div xmlns="http://www.w3.org/1999/xhtml">CPT&reg;</div></text></Patient>"#
        ),
        "error Patient.text.div: the XHTML has an undefined entity or a bare & at \"&reg;</div>\""
    );
    assert_eq!(json("<Patient/>"), r#"{"resourceType":"Patient"}"#);
    assert_eq!(
        json(""),
        "error XML syntax error at byte 0: no root element"
    );
}
