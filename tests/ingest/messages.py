"""Small hand-made HL7v3 messages for pipeline tests (the real ones are in ../shared/reference)."""

from __future__ import annotations

EPISODE = """<?xml version="1.0" encoding="UTF-8"?>
<REPC_IN990111NL xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <id extension="{message_id}" root="2.16.840.1.113883.2.4.6.6.1.1"/>
  <creationTime value="20240101120000"/>
  <interactionId extension="REPC_IN990111NL" root="2.16.840.1.113883.1.6"/>
  <ControlActProcess moodCode="EVN">
    <authorOrPerformer typeCode="AUT"><participant><AssignedDevice>
      <id extension="23434323" root="2.16.840.1.113883.2.4.6.6"/>
      <Organization><id extension="02234567" root="2.16.528.1.1007.3.3"/><name>Praktijk Test</name></Organization>
    </AssignedDevice></participant></authorOrPerformer>
    <subject><organizer classCode="CLUSTER" moodCode="EVN">
      <code code="75310-3" codeSystem="2.16.840.1.113883.6.1"/>
      <statusCode code="completed"/>
      <recordTarget><patientRole>
        {patient_ids}
        <patient><name><given>Joris</given><family>Hansman</family></name>
          <administrativeGenderCode code="M" codeSystem="2.16.840.1.113883.5.1"/>
          <birthTime value="{birth}"/>{extra}</patient>
      </patientRole></recordTarget>
      <component><act classCode="ACT" moodCode="EVN">
        <id extension="{episode_id}" root="2.16.528.1.1007.3.3.765332.1.12"/>
        <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/>
        <text>{title}</text>
        <statusCode code="active"/>
        <effectiveTime><low value="20150810"/></effectiveTime>
        <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
          <id extension="dx-{episode_id}" root="2.16.528.1.1007.3.3.765332.1.12"/>
          <code code="282291009" codeSystem="2.16.840.1.113883.6.96"/>
          <statusCode code="completed"/>
          <value xsi:type="CD" code="R95" codeSystem="2.16.840.1.113883.2.4.4.31.1" displayName="Emfyseem/COPD"/>
        </observation></entryRelationship>
      </act></component>
    </organizer></subject>
  </ControlActProcess>
</REPC_IN990111NL>
"""

VALID_BSN = "012345672"
OTHER_VALID_BSN = "999911624"


def episode_message(message_id: str = "m-1", bsn: str | None = VALID_BSN, birth: str = "19700101",
                    episode_id: str = "ep-1", title: str = "COPD", extra: str = "",
                    source_id: str | None = None) -> bytes:
    ids = []
    if bsn is not None:
        ids.append(f'<id root="2.16.840.1.113883.2.4.6.3" extension="{bsn}"/>')
    if source_id is not None:
        ids.append(f'<id root="2.16.840.1.113883.2.4.6.6.90000258.2.460320" extension="{source_id}"/>')
    return EPISODE.format(message_id=message_id, patient_ids="".join(ids), birth=birth, episode_id=episode_id,
                          title=title, extra=extra).encode()
