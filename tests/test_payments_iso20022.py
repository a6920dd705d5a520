"""ISO 20022 credit transfers (pacs.008, pain.001): sample messages written here, read as records.

The samples follow the published message structures (element order, old `BIC` versus new `BICFI`,
pain.001's `ReqdExctnDt` before and after v08, a Business Application Header envelope). Broken samples
check that each problem is reported at the right line with a message naming the element, and that the
other transactions are still read.
"""

from __future__ import annotations

import datetime as dt
import gzip
import textwrap
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from appban.payments.readers.iso20022 import EXPECTED, Iso20022Reader
from appban.payments.records import RECORD_SCHEMA, ReadStats
from appban.reading.streams import read_head

UTC = dt.UTC
PACS008_V08 = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"

# ------------------------------------------------------------------------------------------------
# Helpers


def xml(text: str) -> str:
    """A sample written indented in the test, without the indentation (the declaration must come first)."""
    return textwrap.dedent(text).lstrip()


def write(path: Path, content: str, compression: str | None = None) -> Path:
    data = content.encode("utf-8")
    if compression == "gzip":
        path.write_bytes(gzip.compress(data))
    elif compression == "zstd":
        with pa.output_stream(str(path), compression="zstd") as out:
            out.write(data)
    else:
        path.write_bytes(data)
    return path


def read(path: Path, tz: str = "UTC", batch_rows: int = 65_536) -> tuple[list[dict[str, object]], ReadStats]:
    stats = ReadStats()
    batches = list(Iso20022Reader(tz).read(path, stats, batch_rows))
    for batch in batches:
        assert batch.schema == RECORD_SCHEMA
    assert stats.rows == sum(batch.num_rows for batch in batches)
    return pa.Table.from_batches(batches, schema=RECORD_SCHEMA).to_pylist(), stats


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line containing `needle`."""
    found = [number for number, line in enumerate(text.split("\n"), start=1) if needle in line]
    return found[occurrence - 1]


def errors(stats: ReadStats) -> list[tuple[int, str]]:
    return [(error.line, error.message) for error in stats.errors]


def at(*parts: int, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=tz).astimezone(UTC)


def pick(record: dict[str, object], *fields: str) -> tuple[object, ...]:
    return tuple(record[field] for field in fields)


PARTY = ("payer", "payer_country", "payer_type", "payer_agent", "payee", "payee_country", "payee_type", "payee_agent")

# ------------------------------------------------------------------------------------------------
# Samples

# FI-to-FI customer credit transfers, current version: three transactions settled through a U.S. bank.
PACS008 = xml(
    f"""
    <?xml version="1.0" encoding="UTF-8"?>
    <Document xmlns="{PACS008_V08}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
      <FIToFICstmrCdtTrf>
        <GrpHdr>
          <MsgId>CHASUS33-20240301-000178</MsgId>
          <CreDtTm>2024-03-01T08:00:00-05:00</CreDtTm>
          <NbOfTxs>3</NbOfTxs>
          <IntrBkSttlmDt>2024-03-04</IntrBkSttlmDt>
          <SttlmInf>
            <SttlmMtd>INDA</SttlmMtd>
          </SttlmInf>
          <InstgAgt><FinInstnId><BICFI>CHASUS33XXX</BICFI></FinInstnId></InstgAgt>
        </GrpHdr>
        <CdtTrfTxInf>
          <PmtId>
            <InstrId>INSTR-0001</InstrId>
            <EndToEndId>E2E-2024-0001</EndToEndId>
            <TxId>TX-0001</TxId>
            <UETR>7a562c67-ca16-48ba-b074-65581be6f001</UETR>
          </PmtId>
          <PmtTpInf><SvcLvl><Cd>G001</Cd></SvcLvl></PmtTpInf>
          <IntrBkSttlmAmt Ccy="USD">1250.00</IntrBkSttlmAmt>
          <IntrBkSttlmDt>2024-03-01</IntrBkSttlmDt>
          <AccptncDtTm>2024-03-01T09:30:15.250-05:00</AccptncDtTm>
          <InstdAmt Ccy="USD">1250.00</InstdAmt>
          <ChrgBr>SHAR</ChrgBr>
          <InstgAgt><FinInstnId><BICFI>CHASUS33XXX</BICFI></FinInstnId></InstgAgt>
          <InstdAgt><FinInstnId><BICFI>DEUTDEFFXXX</BICFI></FinInstnId></InstdAgt>
          <Dbtr>
            <Nm>John Smith</Nm>
            <PstlAdr>
              <StrtNm>Park Avenue</StrtNm>
              <BldgNb>270</BldgNb>
              <PstCd>10017</PstCd>
              <TwnNm>New York</TwnNm>
              <CtrySubDvsn>NY</CtrySubDvsn>
              <Ctry>US</Ctry>
            </PstlAdr>
            <Id>
              <PrvtId>
                <DtAndPlcOfBirth>
                  <BirthDt>1980-05-17</BirthDt>
                  <CityOfBirth>Boston</CityOfBirth>
                  <CtryOfBirth>US</CtryOfBirth>
                </DtAndPlcOfBirth>
              </PrvtId>
            </Id>
          </Dbtr>
          <DbtrAcct><Id><Othr><Id>000123456789</Id></Othr></Id></DbtrAcct>
          <DbtrAgt><FinInstnId><BICFI>CHASUS33XXX</BICFI></FinInstnId></DbtrAgt>
          <CdtrAgt><FinInstnId><BICFI>DEUTDEFFXXX</BICFI></FinInstnId></CdtrAgt>
          <Cdtr>
            <Nm>Anna Müller</Nm>
            <PstlAdr>
              <TwnNm>Berlin</TwnNm>
              <Ctry>de</Ctry>
            </PstlAdr>
            <Id><PrvtId><Othr><Id>L01X00T47</Id><SchmeNm><Cd>NIDN</Cd></SchmeNm></Othr></PrvtId></Id>
          </Cdtr>
          <CdtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></CdtrAcct>
          <RmtInf>
            <Ustrd>Birthday gift</Ustrd>
            <Ustrd>for Anna</Ustrd>
          </RmtInf>
        </CdtTrfTxInf>
        <CdtTrfTxInf>
          <PmtId>
            <EndToEndId>NOTPROVIDED</EndToEndId>
            <TxId>TX-0002</TxId>
            <UETR>7a562c67-ca16-48ba-b074-65581be6f002</UETR>
          </PmtId>
          <PmtTpInf><CtgyPurp><Cd>SUPP</Cd></CtgyPurp></PmtTpInf>
          <IntrBkSttlmAmt Ccy="EUR">98000.5</IntrBkSttlmAmt>
          <IntrBkSttlmDt>2024-03-02</IntrBkSttlmDt>
          <ChrgBr>DEBT</ChrgBr>
          <Dbtr>
            <Nm>Acme Industrial Supply Inc.</Nm>
            <PstlAdr><TwnNm>Chicago</TwnNm><Ctry>US</Ctry></PstlAdr>
            <Id><OrgId><LEI>5493001KJTIIGC8Y1R12</LEI></OrgId></Id>
          </Dbtr>
          <DbtrAgt><FinInstnId><BICFI>BOFAUS3NXXX</BICFI></FinInstnId></DbtrAgt>
          <CdtrAgt><FinInstnId><Nm>Barclays Bank PLC</Nm></FinInstnId></CdtrAgt>
          <Cdtr>
            <Nm>Northwind Traders Ltd</Nm>
            <Id><OrgId><Othr><Id>GB123456789</Id></Othr></OrgId></Id>
            <CtryOfRes>GB</CtryOfRes>
          </Cdtr>
        </CdtTrfTxInf>
        <CdtTrfTxInf>
          <PmtId>
            <EndToEndId>NOTPROVIDED</EndToEndId>
            <UETR>7a562c67-ca16-48ba-b074-65581be6f003</UETR>
          </PmtId>
          <IntrBkSttlmAmt Ccy="CNY">15000</IntrBkSttlmAmt>
          <ChrgBr>SHAR</ChrgBr>
          <IntrmyAgt1><FinInstnId><BICFI>CITIUS33XXX</BICFI></FinInstnId></IntrmyAgt1>
          <IntrmyAgt2><FinInstnId><BICFI>HSBCHKHHHKH</BICFI></FinInstnId></IntrmyAgt2>
          <Dbtr><Nm>Wei Zhang</Nm><PstlAdr><Ctry>US</Ctry></PstlAdr></Dbtr>
          <DbtrAgt><FinInstnId><BICFI>WFBIUS6SXXX</BICFI></FinInstnId></DbtrAgt>
          <CdtrAgt><FinInstnId><BICFI>ICBKCNBJSZN</BICFI></FinInstnId></CdtrAgt>
          <Cdtr>
            <Nm>Tenpay Payment Technology Co., Ltd.</Nm>
            <PstlAdr><TwnNm>Shenzhen</TwnNm><Ctry>CN</Ctry></PstlAdr>
            <Id><OrgId><Othr><Id>91440300708461136T</Id></Othr></OrgId></Id>
          </Cdtr>
          <Purp><Cd>SALA</Cd></Purp>
          <RmtInf><Ustrd>Payroll March</Ustrd></RmtInf>
        </CdtTrfTxInf>
      </FIToFICstmrCdtTrf>
    </Document>
    """
)

# The 2009 version: `BIC` instead of `BICFI`, a payment type in the group header, no transaction date.
PACS008_V02 = xml(
    """
    <?xml version="1.0" encoding="UTF-8"?>
    <Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.02">
      <FIToFICstmrCdtTrf>
        <GrpHdr>
          <MsgId>BNPAFRPP-131105-0042</MsgId>
          <CreDtTm>2013-11-05T10:00:00</CreDtTm>
          <NbOfTxs>1</NbOfTxs>
          <TtlIntrBkSttlmAmt Ccy="EUR">500.00</TtlIntrBkSttlmAmt>
          <IntrBkSttlmDt>2013-11-06</IntrBkSttlmDt>
          <SttlmInf>
            <SttlmMtd>CLRG</SttlmMtd>
            <ClrSys><Prtry>ST2</Prtry></ClrSys>
          </SttlmInf>
          <PmtTpInf>
            <SvcLvl><Cd>SEPA</Cd></SvcLvl>
            <CtgyPurp><Cd>SUPP</Cd></CtgyPurp>
          </PmtTpInf>
          <InstgAgt><FinInstnId><BIC>BNPAFRPP</BIC></FinInstnId></InstgAgt>
        </GrpHdr>
        <CdtTrfTxInf>
          <PmtId>
            <InstrId>0042-1</InstrId>
            <EndToEndId>INV-2013-77</EndToEndId>
            <TxId>BNP-0042-1</TxId>
          </PmtId>
          <IntrBkSttlmAmt Ccy="EUR">500.00</IntrBkSttlmAmt>
          <ChrgBr>SLEV</ChrgBr>
          <IntrmyAgt1>
            <FinInstnId>
              <Nm>Correspondent Clearing Bank</Nm>
              <PstlAdr><Ctry>BE</Ctry></PstlAdr>
            </FinInstnId>
          </IntrmyAgt1>
          <Dbtr>
            <Nm>Dupont SARL</Nm>
            <PstlAdr><Ctry>FR</Ctry></PstlAdr>
            <Id><OrgId><Othr><Id>FR40303265045</Id></Othr></OrgId></Id>
          </Dbtr>
          <DbtrAcct><Id><IBAN>FR1420041010050500013M02606</IBAN></Id></DbtrAcct>
          <DbtrAgt><FinInstnId><BIC>BNPAFRPP</BIC></FinInstnId></DbtrAgt>
          <CdtrAgt><FinInstnId><BIC>DEUTDEFF</BIC></FinInstnId></CdtrAgt>
          <Cdtr>
            <Nm>Schmidt GmbH</Nm>
            <PstlAdr><Ctry>DE</Ctry></PstlAdr>
          </Cdtr>
          <CdtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></CdtrAcct>
          <RmtInf><Ustrd>Invoice 2013-77</Ustrd></RmtInf>
        </CdtTrfTxInf>
      </FIToFICstmrCdtTrf>
    </Document>
    """
)

# Customer-to-bank initiation, 2009 version: ReqdExctnDt is a bare date; two payment blocks, two debtors.
PAIN001_V03 = xml(
    """
    <?xml version="1.0" encoding="UTF-8"?>
    <Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03">
      <CstmrCdtTrfInitn>
        <GrpHdr>
          <MsgId>ACME-PAYROLL-2024-04</MsgId>
          <CreDtTm>2024-04-12T16:45:00</CreDtTm>
          <NbOfTxs>3</NbOfTxs>
          <CtrlSum>58199.99</CtrlSum>
          <InitgPty><Nm>Acme Corp</Nm></InitgPty>
        </GrpHdr>
        <PmtInf>
          <PmtInfId>PAYROLL-A</PmtInfId>
          <PmtMtd>TRF</PmtMtd>
          <BtchBookg>true</BtchBookg>
          <NbOfTxs>2</NbOfTxs>
          <PmtTpInf>
            <SvcLvl><Cd>NURG</Cd></SvcLvl>
            <CtgyPurp><Cd>SALA</Cd></CtgyPurp>
          </PmtTpInf>
          <ReqdExctnDt>2024-04-15</ReqdExctnDt>
          <Dbtr>
            <Nm>Acme Corp</Nm>
            <PstlAdr><Ctry>US</Ctry></PstlAdr>
            <Id><OrgId><Othr><Id>12-3456789</Id><SchmeNm><Cd>TXID</Cd></SchmeNm></Othr></OrgId></Id>
          </Dbtr>
          <DbtrAcct><Id><Othr><Id>000123456789</Id></Othr></Id><Ccy>USD</Ccy></DbtrAcct>
          <DbtrAgt><FinInstnId><BIC>BOFAUS3N</BIC></FinInstnId></DbtrAgt>
          <ChrgBr>DEBT</ChrgBr>
          <CdtTrfTxInf>
            <PmtId>
              <InstrId>A-1</InstrId>
              <EndToEndId>SAL-0415-001</EndToEndId>
            </PmtId>
            <Amt><InstdAmt Ccy="USD">4200.00</InstdAmt></Amt>
            <CdtrAgt><FinInstnId><BIC>CHASUS33</BIC></FinInstnId></CdtrAgt>
            <Cdtr>
              <Nm>Maria Garcia</Nm>
              <PstlAdr><Ctry>US</Ctry></PstlAdr>
              <Id><PrvtId><Othr><Id>E-1001</Id><SchmeNm><Cd>EMPL</Cd></SchmeNm></Othr></PrvtId></Id>
            </Cdtr>
            <CdtrAcct><Id><Othr><Id>987654321</Id></Othr></Id></CdtrAcct>
            <RmtInf><Ustrd>April salary</Ustrd></RmtInf>
          </CdtTrfTxInf>
          <CdtTrfTxInf>
            <PmtId><EndToEndId>SAL-0415-002</EndToEndId></PmtId>
            <Amt>
              <EqvtAmt>
                <Amt Ccy="MXN">52000.00</Amt>
                <CcyOfTrf>USD</CcyOfTrf>
              </EqvtAmt>
            </Amt>
            <CdtrAgt><FinInstnId><BIC>BNMXMXMM</BIC></FinInstnId></CdtrAgt>
            <Cdtr><Nm>Carlos Lopez</Nm><PstlAdr><Ctry>MX</Ctry></PstlAdr></Cdtr>
            <Purp><Cd>BONU</Cd></Purp>
          </CdtTrfTxInf>
        </PmtInf>
        <PmtInf>
          <PmtInfId>VENDORS</PmtInfId>
          <PmtMtd>TRF</PmtMtd>
          <ReqdExctnDt>2024-04-16</ReqdExctnDt>
          <Dbtr><Nm>Acme Europe BV</Nm><PstlAdr><Ctry>NL</Ctry></PstlAdr></Dbtr>
          <DbtrAcct><Id><IBAN>NL91ABNA0417164300</IBAN></Id></DbtrAcct>
          <DbtrAgt><FinInstnId><BIC>INGBNL2A</BIC></FinInstnId></DbtrAgt>
          <CdtTrfTxInf>
            <PmtId><EndToEndId>VEND-88</EndToEndId></PmtId>
            <Amt><InstdAmt Ccy="EUR">1999.99</InstdAmt></Amt>
            <CdtrAgt><FinInstnId><BIC>COBADEFF</BIC></FinInstnId></CdtrAgt>
            <Cdtr>
              <Nm>Globex GmbH</Nm>
              <PstlAdr><Ctry>DE</Ctry></PstlAdr>
              <Id><OrgId><Othr><Id>HRB 12345</Id></Othr></OrgId></Id>
            </Cdtr>
            <RmtInf><Ustrd>Invoice 4711</Ustrd></RmtInf>
          </CdtTrfTxInf>
        </PmtInf>
      </CstmrCdtTrfInitn>
    </Document>
    """
)

# The 2019 version: ReqdExctnDt chooses DtTm (here with an offset) or Dt; BICFI.
PAIN001_V09 = xml(
    """
    <?xml version="1.0" encoding="UTF-8"?>
    <Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09">
      <CstmrCdtTrfInitn>
        <GrpHdr>
          <MsgId>LW-20240501-01</MsgId>
          <CreDtTm>2024-05-01T18:00:00+08:00</CreDtTm>
          <NbOfTxs>2</NbOfTxs>
          <InitgPty><Nm>Li Wei</Nm></InitgPty>
        </GrpHdr>
        <PmtInf>
          <PmtInfId>LW-1</PmtInfId>
          <PmtMtd>TRF</PmtMtd>
          <ReqdExctnDt>
            <DtTm>2024-05-02T10:00:00+08:00</DtTm>
          </ReqdExctnDt>
          <Dbtr>
            <Nm>Li Wei</Nm>
            <PstlAdr><TwnNm>Shanghai</TwnNm><Ctry>CN</Ctry></PstlAdr>
            <Id><PrvtId><Othr><Id>310101198001011234</Id></Othr></PrvtId></Id>
          </Dbtr>
          <DbtrAcct><Id><Othr><Id>6222020200112233</Id></Othr></Id></DbtrAcct>
          <DbtrAgt><FinInstnId><BICFI>BKCHCNBJ300</BICFI></FinInstnId></DbtrAgt>
          <CdtTrfTxInf>
            <PmtId><EndToEndId>LW-1-1</EndToEndId></PmtId>
            <Amt><InstdAmt Ccy="CNY">3000.00</InstdAmt></Amt>
            <CdtrAgt><FinInstnId><BICFI>ICBKCNBJSZN</BICFI></FinInstnId></CdtrAgt>
            <Cdtr><Nm>Tenpay Payment Technology Co., Ltd.</Nm><PstlAdr><Ctry>CN</Ctry></PstlAdr></Cdtr>
            <RmtInf><Ustrd>WeChat Pay</Ustrd></RmtInf>
          </CdtTrfTxInf>
        </PmtInf>
        <PmtInf>
          <PmtInfId>LW-2</PmtInfId>
          <PmtMtd>TRF</PmtMtd>
          <ReqdExctnDt>
            <Dt>2024-05-03</Dt>
          </ReqdExctnDt>
          <Dbtr>
            <Nm>Wei Trading Ltd</Nm>
            <PstlAdr><Ctry>HK</Ctry></PstlAdr>
            <Id><OrgId><AnyBIC>WEITHKHHXXX</AnyBIC></OrgId></Id>
          </Dbtr>
          <DbtrAcct><Id><Othr><Id>012-345-678901</Id></Othr></Id></DbtrAcct>
          <DbtrAgt><FinInstnId><BICFI>HSBCHKHHHKH</BICFI></FinInstnId></DbtrAgt>
          <CdtTrfTxInf>
            <PmtId><EndToEndId>LW-2-1</EndToEndId></PmtId>
            <Amt><InstdAmt Ccy="HKD">800.00</InstdAmt></Amt>
            <CdtrAgt><FinInstnId><BICFI>HSBCHKHHHKH</BICFI></FinInstnId></CdtrAgt>
            <Cdtr><Nm>Kowloon Stationery Co</Nm><PstlAdr><Ctry>HK</Ctry></PstlAdr></Cdtr>
          </CdtTrfTxInf>
        </PmtInf>
      </CstmrCdtTrfInitn>
    </Document>
    """
)

# A SWIFT CBPR+ style message: a Business Application Header beside the Document, in an envelope.
ENVELOPED = xml(
    f"""
    <?xml version="1.0" encoding="UTF-8"?>
    <Envelope xmlns="urn:swift:xsd:envelope">
      <AppHdr xmlns="urn:iso:std:iso:20022:tech:xsd:head.001.001.02">
        <Fr><FIId><FinInstnId><BICFI>CHASUS33XXX</BICFI></FinInstnId></FIId></Fr>
        <To><FIId><FinInstnId><BICFI>HSBCGB2LXXX</BICFI></FinInstnId></FIId></To>
        <BizMsgIdr>B2024030100001</BizMsgIdr>
        <MsgDefIdr>pacs.008.001.08</MsgDefIdr>
        <BizSvc>swift.cbprplus.02</BizSvc>
        <CreDt>2024-03-01T14:00:00Z</CreDt>
      </AppHdr>
      <Document xmlns="{PACS008_V08}">
        <FIToFICstmrCdtTrf>
          <GrpHdr>
            <MsgId>B2024030100001</MsgId>
            <CreDtTm>2024-03-01T14:00:00Z</CreDtTm>
            <NbOfTxs>1</NbOfTxs>
            <SttlmInf><SttlmMtd>INDA</SttlmMtd></SttlmInf>
          </GrpHdr>
          <CdtTrfTxInf>
            <PmtId>
              <EndToEndId>CBPR-1</EndToEndId>
              <UETR>0f1c2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b</UETR>
            </PmtId>
            <IntrBkSttlmAmt Ccy="GBP">720.10</IntrBkSttlmAmt>
            <IntrBkSttlmDt>2024-03-01</IntrBkSttlmDt>
            <ChrgBr>SHAR</ChrgBr>
            <Dbtr><Nm>Olivia Brown</Nm><PstlAdr><Ctry>US</Ctry></PstlAdr></Dbtr>
            <DbtrAgt><FinInstnId><BICFI>CHASUS33XXX</BICFI></FinInstnId></DbtrAgt>
            <CdtrAgt><FinInstnId><BICFI>HSBCGB2LXXX</BICFI></FinInstnId></CdtrAgt>
            <Cdtr><Nm>Noah Kim</Nm><PstlAdr><Ctry>GB</Ctry></PstlAdr></Cdtr>
          </CdtTrfTxInf>
        </FIToFICstmrCdtTrf>
      </Document>
    </Envelope>
    """
)


def pacs008(*transactions: str, group: str = "<CreDtTm>2024-03-01T08:00:00Z</CreDtTm>") -> str:
    """A pacs.008.001.08 message around transactions written as the inside of CdtTrfTxInf."""
    body = "".join(
        f"    <CdtTrfTxInf>\n{textwrap.indent(xml(tx), '      ')}    </CdtTrfTxInf>\n" for tx in transactions
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{PACS008_V08}">\n  <FIToFICstmrCdtTrf>\n'
        f"    <GrpHdr><MsgId>M1</MsgId>{group}<NbOfTxs>{len(transactions)}</NbOfTxs></GrpHdr>\n"
        f"{body}  </FIToFICstmrCdtTrf>\n</Document>\n"
    )


def simple_tx(number: int, amount: str = '<IntrBkSttlmAmt Ccy="USD">10.00</IntrBkSttlmAmt>', extra: str = "") -> str:
    return f"""
        <PmtId><EndToEndId>E{number}</EndToEndId></PmtId>
        {amount}
        {extra}
        <Dbtr><Nm>Payer {number}</Nm><PstlAdr><Ctry>US</Ctry></PstlAdr></Dbtr>
        <Cdtr><Nm>Payee {number}</Nm></Cdtr>
    """


# ------------------------------------------------------------------------------------------------
# Messages and their mapping


def test_pacs008_v08_three_transactions(tmp_path: Path) -> None:
    records, stats = read(write(tmp_path / "pacs008.xml", PACS008))
    assert stats.malformed == 0 and stats.errors == []
    assert len(records) == 3
    first, second, third = records
    assert pick(first, "ts", "id", "amount", "currency", "kind", "source", "line") == (
        dt.datetime(2024, 3, 1, 14, 30, 15, 250_000, tzinfo=UTC),  # AccptncDtTm wins over IntrBkSttlmDt
        "E2E-2024-0001",
        Decimal("1250.00000"),
        "USD",
        "transfer",
        "pacs.008",
        line_of(PACS008, "<CdtTrfTxInf>", 1),
    )
    assert pick(first, *PARTY) == (
        "John Smith", "US", "individual", "CHASUS33XXX", "Anna Müller", "DE", "individual", "DEUTDEFFXXX"
    )  # fmt: skip
    assert pick(first, "processor", "processor_country", "purpose", "remittance") == (
        None, None, None, "Birthday gift for Anna"
    )  # fmt: skip
    # SvcLvl G001 (SWIFT gpi) is a stated scheme: the method says credit transfer
    assert pick(first, "method", "wallet", "merchant", "merchant_country") == ("credit_transfer", None, None, None)

    # NOTPROVIDED is not an id: TxId instead. The creditor's country is its residence; its agent has no BIC.
    assert pick(second, "ts", "id", "amount", "currency", "purpose", "line") == (
        at(2024, 3, 2), "TX-0002", Decimal("98000.50000"), "EUR", "SUPP", line_of(PACS008, "<CdtTrfTxInf>", 2)
    )  # fmt: skip
    assert pick(second, *PARTY) == (
        "Acme Industrial Supply Inc.", "US", "organisation", "BOFAUS3NXXX",
        "Northwind Traders Ltd", "GB", "organisation", "Barclays Bank PLC",
    )  # fmt: skip

    # No date of its own: the group header's settlement date. No EndToEndId or TxId: the UETR.
    assert pick(third, "ts", "id", "amount", "currency", "line") == (
        at(2024, 3, 4), "7a562c67-ca16-48ba-b074-65581be6f003", Decimal("15000"), "CNY",
        line_of(PACS008, "<CdtTrfTxInf>", 3),
    )  # fmt: skip
    assert pick(third, "processor", "processor_country", "purpose", "remittance") == (
        "CITIUS33XXX", "US", "SALA", "Payroll March"
    )  # fmt: skip
    assert pick(third, *PARTY) == (
        "Wei Zhang", "US", None, "WFBIUS6SXXX",
        "Tenpay Payment Technology Co., Ltd.", "CN", "organisation", "ICBKCNBJSZN",
    )  # fmt: skip


def test_pacs008_v02_old_bic_tags_and_group_header_fallbacks(tmp_path: Path) -> None:
    records, stats = read(write(tmp_path / "old.xml", PACS008_V02), tz="Europe/Paris")
    assert stats.errors == []
    assert len(records) == 1
    (record,) = records
    # The bare settlement date of the group header is midnight in Paris (UTC+1 in November).
    assert record["ts"] == dt.datetime(2013, 11, 5, 23, 0, tzinfo=UTC)
    assert pick(record, "id", "amount", "currency", "purpose", "remittance") == (
        "INV-2013-77", Decimal("500"), "EUR", "SUPP", "Invoice 2013-77"
    )  # fmt: skip
    assert pick(record, *PARTY) == (
        "Dupont SARL", "FR", "organisation", "BNPAFRPP", "Schmidt GmbH", "DE", None, "DEUTDEFF"
    )  # fmt: skip
    # An intermediary without a BIC: its name, and the country of its address.
    assert pick(record, "processor", "processor_country") == ("Correspondent Clearing Bank", "BE")
    assert record["line"] == line_of(PACS008_V02, "<CdtTrfTxInf>")


def test_pain001_v03_bare_execution_date_and_two_debtors(tmp_path: Path) -> None:
    records, stats = read(write(tmp_path / "pain.xml", PAIN001_V03), tz="America/New_York")
    assert stats.errors == []
    assert [pick(r, "id", "ts", "amount", "currency", "source") for r in records] == [
        ("SAL-0415-001", dt.datetime(2024, 4, 15, 4, tzinfo=UTC), Decimal("4200"), "USD", "pain.001"),
        ("SAL-0415-002", dt.datetime(2024, 4, 15, 4, tzinfo=UTC), Decimal("52000"), "MXN", "pain.001"),  # EqvtAmt
        ("VEND-88", dt.datetime(2024, 4, 16, 4, tzinfo=UTC), Decimal("1999.99"), "EUR", "pain.001"),
    ]
    # Debtor and debtor agent come from each transaction's own PmtInf.
    assert [pick(r, *PARTY) for r in records] == [
        ("Acme Corp", "US", "organisation", "BOFAUS3N", "Maria Garcia", "US", "individual", "CHASUS33"),
        ("Acme Corp", "US", "organisation", "BOFAUS3N", "Carlos Lopez", "MX", None, "BNMXMXMM"),
        ("Acme Europe BV", "NL", None, "INGBNL2A", "Globex GmbH", "DE", "organisation", "COBADEFF"),
    ]
    # The PmtInf's category purpose unless the transaction states its own purpose.
    assert [r["purpose"] for r in records] == ["SALA", "BONU", None]
    assert [r["remittance"] for r in records] == ["April salary", None, "Invoice 4711"]
    assert [r["line"] for r in records] == [line_of(PAIN001_V03, "<CdtTrfTxInf>", n) for n in (1, 2, 3)]


def test_pain001_v09_execution_date_time_with_offset_and_two_debtors(tmp_path: Path) -> None:
    records, stats = read(write(tmp_path / "pain9.xml", PAIN001_V09), tz="Asia/Hong_Kong")
    assert stats.errors == []
    assert [pick(r, "id", "ts", "amount", "currency") for r in records] == [
        ("LW-1-1", dt.datetime(2024, 5, 2, 2, tzinfo=UTC), Decimal("3000"), "CNY"),  # DtTm at +08:00
        ("LW-2-1", dt.datetime(2024, 5, 2, 16, tzinfo=UTC), Decimal("800"), "HKD"),  # Dt: midnight in Hong Kong
    ]
    assert [pick(r, *PARTY) for r in records] == [
        ("Li Wei", "CN", "individual", "BKCHCNBJ300",
         "Tenpay Payment Technology Co., Ltd.", "CN", None, "ICBKCNBJSZN"),
        ("Wei Trading Ltd", "HK", "organisation", "HSBCHKHHHKH", "Kowloon Stationery Co", "HK", None, "HSBCHKHHHKH"),
    ]  # fmt: skip
    assert records[0]["remittance"] == "WeChat Pay"


def test_message_in_an_envelope_with_a_business_application_header(tmp_path: Path) -> None:
    path = write(tmp_path / "cbpr.xml", ENVELOPED)
    assert Iso20022Reader().sniff(path, read_head(path))
    records, stats = read(path)
    assert stats.errors == []
    assert [pick(r, "id", "ts", "amount", "currency", "payer", "payee_country", "line") for r in records] == [
        ("CBPR-1", at(2024, 3, 1), Decimal("720.1"), "GBP", "Olivia Brown", "GB", line_of(ENVELOPED, "<CdtTrfTxInf>"))
    ]


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_input(tmp_path: Path, compression: str) -> None:
    plain, _ = read(write(tmp_path / "plain.xml", PACS008))
    path = write(tmp_path / f"pacs008.xml.{'gz' if compression == 'gzip' else 'zst'}", PACS008, compression)
    assert Iso20022Reader().sniff(path, read_head(path))
    records, stats = read(path)
    assert stats.errors == []
    assert records == plain


def test_timestamps_with_offset_without_offset_and_bare_dates(tmp_path: Path) -> None:
    berlin = dt.timezone(dt.timedelta(hours=2))  # summer time
    text = pacs008(
        simple_tx(1, extra="<AccptncDtTm>2024-07-01T12:00:00+05:30</AccptncDtTm>"),  # offset: as written
        simple_tx(2, extra="<AccptncDtTm>2024-07-01T12:00:00</AccptncDtTm>"),  # none: in the reader's zone
        simple_tx(3, extra="<AccptncDtTm>2024-07-01T12:00:00.1234567Z</AccptncDtTm>"),  # beyond microseconds
        simple_tx(4, extra="<IntrBkSttlmDt>2024-07-01</IntrBkSttlmDt>"),  # bare date: midnight in the zone
        simple_tx(5, extra="<IntrBkSttlmDt>2024-07-01-03:00</IntrBkSttlmDt>"),  # a date with its own offset
        simple_tx(6),  # nothing: the group header's creation time
        group="<CreDtTm>2024-07-01T23:30:00</CreDtTm>",
    )
    records, stats = read(write(tmp_path / "times.xml", text), tz="Europe/Berlin")
    assert stats.errors == []
    assert [r["ts"] for r in records] == [
        dt.datetime(2024, 7, 1, 6, 30, tzinfo=UTC),
        at(2024, 7, 1, 12, tz=berlin),
        dt.datetime(2024, 7, 1, 12, 0, 0, 123456, tzinfo=UTC),
        at(2024, 7, 1, tz=berlin),
        dt.datetime(2024, 7, 1, 3, tzinfo=UTC),
        at(2024, 7, 1, 23, 30, tz=berlin),
    ]
    # The default zone is UTC.
    records, _ = read(write(tmp_path / "times.xml", text))
    assert records[1]["ts"] == at(2024, 7, 1, 12) and records[3]["ts"] == at(2024, 7, 1)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Iso20022Reader("Mars/Olympus_Mons")


def test_sniff(tmp_path: Path) -> None:
    reader = Iso20022Reader()
    for name, text in [("a", PACS008), ("b", PACS008_V02), ("c", PAIN001_V03), ("d", PAIN001_V09), ("e", ENVELOPED)]:
        path = write(tmp_path / f"{name}.xml", text)
        assert reader.sniff(path, read_head(path)), name
    # An envelope whose header fills the head: the header's message definition tells.
    assert reader.sniff(tmp_path / "e.xml", ENVELOPED[: ENVELOPED.index("<Document")].encode())
    refused = [
        PACS008.replace("pacs.008.001.08", "pacs.009.001.08"),
        PACS008.replace("pacs.008.001.08", "camt.053.001.08"),
        PACS008.replace(f' xmlns="{PACS008_V08}"', ""),
        ENVELOPED.replace("pacs.008.001.08", "camt.054.001.08"),
        "ts,amount,currency\n2024-01-01,10,USD\n",
        "",
    ]
    for number, text in enumerate(refused):
        path = write(tmp_path / f"no{number}.xml", text)
        assert not reader.sniff(path, read_head(path)), number


# ------------------------------------------------------------------------------------------------
# Bad input


def test_bad_transactions_are_reported_and_dropped(tmp_path: Path) -> None:
    cases = [
        ("", "CdtTrfTxInf has no IntrBkSttlmAmt"),
        ('<IntrBkSttlmAmt Ccy="EUR">12,50</IntrBkSttlmAmt>', "IntrBkSttlmAmt '12,50' is not a decimal amount"),
        ('<IntrBkSttlmAmt Ccy="USD">-5</IntrBkSttlmAmt>', "IntrBkSttlmAmt '-5' is negative"),
        ('<IntrBkSttlmAmt Ccy="USD">1.123456</IntrBkSttlmAmt>', "IntrBkSttlmAmt '1.123456' has more than 5 decimals"),
        ('<IntrBkSttlmAmt Ccy="USD">1234567890123456789</IntrBkSttlmAmt>',
         "IntrBkSttlmAmt '1234567890123456789' has more than 18 digits"),
        ('<IntrBkSttlmAmt Ccy="USD"> </IntrBkSttlmAmt>', "IntrBkSttlmAmt is empty"),
        ("<IntrBkSttlmAmt>10.00</IntrBkSttlmAmt>", "IntrBkSttlmAmt has no Ccy (currency)"),
        ('<IntrBkSttlmAmt Ccy="XYZ">10.00</IntrBkSttlmAmt>', "IntrBkSttlmAmt currency 'XYZ' is not an ISO 4217 code"),
        ('<IntrBkSttlmAmt Ccy="USD">1</IntrBkSttlmAmt><IntrBkSttlmDt>2021-02-30</IntrBkSttlmDt>',
         "IntrBkSttlmDt '2021-02-30' is not a valid date: day is out of range for month"),
        ('<IntrBkSttlmAmt Ccy="USD">1</IntrBkSttlmAmt><AccptncDtTm>2021-02-28 09:30</AccptncDtTm>',
         "AccptncDtTm '2021-02-28 09:30' is not an ISO date-time (YYYY-MM-DDThh:mm:ss[.s][Z|+hh:mm])"),
        ('<IntrBkSttlmAmt Ccy="USD">1</IntrBkSttlmAmt><AccptncDtTm>2021-02-28T25:00:00</AccptncDtTm>',
         "AccptncDtTm '2021-02-28T25:00:00' is not a valid date-time: hour must be in 0..23"),
    ]  # fmt: skip
    good = '<IntrBkSttlmAmt Ccy="USD">10.00</IntrBkSttlmAmt>'
    transactions = [simple_tx(0, good)]
    for number, (amount, _) in enumerate(cases, start=1):
        transactions += [simple_tx(number, amount)]
    # Countries: an unknown one in an address, and in the BIC of the intermediary that becomes the processor.
    country = f"""
        <PmtId><EndToEndId>E{len(cases) + 1}</EndToEndId></PmtId>
        {good}
        <Dbtr><Nm>Payer</Nm><PstlAdr><Ctry>ZZ</Ctry></PstlAdr></Dbtr>
    """
    intermediary = f"""
        <PmtId><EndToEndId>E{len(cases) + 2}</EndToEndId></PmtId>
        {good}
        <IntrmyAgt1><FinInstnId><BICFI>ABCDQQ22</BICFI></FinInstnId></IntrmyAgt1>
    """
    transactions += [country, intermediary, simple_tx(99, good)]
    text = pacs008(*transactions)
    records, stats = read(write(tmp_path / "bad.xml", text))
    assert [r["id"] for r in records] == ["E0", "E99"]
    expected = [message for _, message in cases]
    expected += [
        "Dbtr/PstlAdr/Ctry 'ZZ' is not an ISO 3166-1 alpha-2 country code",
        "IntrmyAgt1/FinInstnId/BICFI 'ABCDQQ22': country code 'QQ' is not an ISO 3166-1 alpha-2 country code",
    ]
    assert stats.malformed == len(expected)
    assert errors(stats) == [(line_of(text, "<CdtTrfTxInf>", n + 2), m) for n, m in enumerate(expected)]
    assert {error.path for error in stats.errors} == {str(tmp_path / "bad.xml")}


def test_pain001_amount_and_date_problems(tmp_path: Path) -> None:
    text = (
        PAIN001_V03.replace('<InstdAmt Ccy="USD">4200.00</InstdAmt>', "")
        .replace('<Amt Ccy="MXN">52000.00</Amt>', '<Amt Ccy="MXN">52 000</Amt>')
        .replace("<ReqdExctnDt>2024-04-16</ReqdExctnDt>", "<ReqdExctnDt>2024-04-31</ReqdExctnDt>")
    )
    records, stats = read(write(tmp_path / "pain.xml", text))
    assert records == []
    assert errors(stats) == [
        (line_of(text, "<CdtTrfTxInf>", 1), "CdtTrfTxInf has no Amt/InstdAmt or Amt/EqvtAmt/Amt"),
        (line_of(text, "<CdtTrfTxInf>", 2), "Amt/EqvtAmt/Amt '52 000' is not a decimal amount"),
        (line_of(text, "<CdtTrfTxInf>", 3),
         "PmtInf/ReqdExctnDt '2024-04-31' is not a valid date: day is out of range for month"),
    ]  # fmt: skip


def test_missing_date_everywhere(tmp_path: Path) -> None:
    text = pacs008(simple_tx(1), simple_tx(2, extra="<IntrBkSttlmDt>2024-01-02</IntrBkSttlmDt>"), group="")
    records, stats = read(write(tmp_path / "nodate.xml", text))
    assert [r["id"] for r in records] == ["E2"]
    assert errors(stats) == [
        (
            line_of(text, "<CdtTrfTxInf>", 1),
            "CdtTrfTxInf has no date: no AccptncDtTm or IntrBkSttlmDt, nor GrpHdr/IntrBkSttlmDt or CreDtTm",
        )
    ]
    text = PAIN001_V09.replace("<CreDtTm>2024-05-01T18:00:00+08:00</CreDtTm>", "")
    text = text.replace("<Dt>2024-05-03</Dt>", "")
    records, stats = read(write(tmp_path / "nodate9.xml", text))
    assert [r["id"] for r in records] == ["LW-1-1"]
    assert errors(stats) == [
        (line_of(text, "<CdtTrfTxInf>", 2), "CdtTrfTxInf has no date: no PmtInf/ReqdExctnDt nor GrpHdr/CreDtTm")
    ]


def test_xml_that_is_not_well_formed_keeps_what_came_before(tmp_path: Path) -> None:
    broken = simple_tx(3).replace("<Nm>Payee 3</Nm>", "<Nm>Payee 3</Name>")
    text = pacs008(simple_tx(1), simple_tx(2), broken, simple_tx(4), group="<CreDtTm>2024-01-01T00:00:00Z</CreDtTm>")
    records, stats = read(write(tmp_path / "broken.xml", text), batch_rows=1)
    assert [r["id"] for r in records] == ["E1", "E2"]
    line = line_of(text, "</Name>")
    column = text.split("\n")[line - 1].index("</Name>") + len("</Name>") + 1  # libxml2 stops just after the tag
    assert errors(stats) == [
        (
            line,
            "XML is not well-formed: Opening and ending tag mismatch: "
            f"Nm line {line} and Name, line {line}, column {column}",
        )
    ]
    # A file cut off in the middle: the transactions before the cut.
    cut = text[: text.index("<Nm>Payee 3</Name>")]
    records, stats = read(write(tmp_path / "cut.xml", cut))
    assert [r["id"] for r in records] == ["E1", "E2"]
    column = len(cut.split("\n")[-1]) + 1
    assert errors(stats) == [
        (line, f"XML is not well-formed: Premature end of data in tag Cdtr line {line}, line {line}, column {column}")
    ]


def test_compressed_stream_that_breaks_off(tmp_path: Path) -> None:
    text = pacs008(*(simple_tx(n) for n in range(3000)))
    data = gzip.compress(text.encode())
    path = tmp_path / "cut.xml.gz"
    path.write_bytes(data[: len(data) // 2])
    records, stats = read(path)
    assert 0 < len(records) < 3000
    assert [r["id"] for r in records] == [f"E{n}" for n in range(len(records))]
    ((line, message),) = errors(stats)
    assert message.startswith("the input breaks off here (")
    assert line >= records[-1]["line"]


@pytest.mark.parametrize(
    ("namespace", "found"),
    [
        (
            "urn:iso:std:iso:20022:tech:xsd:pacs.009.001.08",
            "namespace 'urn:iso:std:iso:20022:tech:xsd:pacs.009.001.08'",
        ),
        (
            "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08",
            "namespace 'urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'",
        ),
        ("urn:iso:std:iso:20022:tech:xsd:pacs.008.001", "namespace 'urn:iso:std:iso:20022:tech:xsd:pacs.008.001'"),
        (None, "no namespace"),
    ],
)
def test_wrong_namespace_is_one_error_and_no_records(tmp_path: Path, namespace: str | None, found: str) -> None:
    declaration = f' xmlns="{PACS008_V08}"'
    text = PACS008.replace(declaration, f' xmlns="{namespace}"' if namespace else "")
    records, stats = read(write(tmp_path / "other.xml", text))
    assert records == []
    assert errors(stats) == [(2, f"Document has {found}; expected {EXPECTED} (a credit transfer)")]
    assert EXPECTED == (
        "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.* or urn:iso:std:iso:20022:tech:xsd:pain.001.001.* (or SIX's "
        "http://www.six-interbank-clearing.com/de/pain.001.001.03.ch.02.xsd)"
    )
    # Inside an envelope the error is at the Document's own line.
    text = ENVELOPED.replace(PACS008_V08, "urn:iso:std:iso:20022:tech:xsd:pacs.009.001.08")
    records, stats = read(write(tmp_path / "other.xml", text))
    assert records == []
    assert [line for line, _ in errors(stats)] == [line_of(text, "<Document")]


# A Swiss pain.001 as banks took it until 2019: SIX's namespace for the Swiss Payment Standards, the
# structure of the Swiss Implementation Guidelines (pain.001.001.03.ch.02: InitgPty with CtctDtls naming the
# software, BIC rather than BICFI, ReqdExctnDt a bare date, a Swiss IBAN debtor account).
SIX_PAIN001 = xml(
    """
    <?xml version="1.0" encoding="UTF-8"?>
    <Document xmlns="http://www.six-interbank-clearing.com/de/pain.001.001.03.ch.02.xsd" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
      <CstmrCdtTrfInitn>
        <GrpHdr>
          <MsgId>MSG-CH-20201015-01</MsgId>
          <CreDtTm>2020-10-14T16:05:00</CreDtTm>
          <NbOfTxs>2</NbOfTxs>
          <CtrlSum>1350.00</CtrlSum>
          <InitgPty>
            <Nm>Uhrenwerk Biel AG</Nm>
            <CtctDtls><Nm>Kreditoren 4.2</Nm><Othr>2.1</Othr></CtctDtls>
          </InitgPty>
        </GrpHdr>
        <PmtInf>
          <PmtInfId>PMTINF-01</PmtInfId>
          <PmtMtd>TRF</PmtMtd>
          <BtchBookg>true</BtchBookg>
          <ReqdExctnDt>2020-10-15</ReqdExctnDt>
          <Dbtr><Nm>Uhrenwerk Biel AG</Nm><PstlAdr><Ctry>CH</Ctry></PstlAdr></Dbtr>
          <DbtrAcct><Id><IBAN>CH9300762011623852957</IBAN></Id></DbtrAcct>
          <DbtrAgt><FinInstnId><BIC>UBSWCHZH80A</BIC></FinInstnId></DbtrAgt>
          <CdtTrfTxInf>
            <PmtId><InstrId>INSTR-1</InstrId><EndToEndId>CH-E2E-1</EndToEndId></PmtId>
            <PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl></PmtTpInf>
            <Amt><InstdAmt Ccy="USD">1250.00</InstdAmt></Amt>
            <CdtrAgt><FinInstnId><BIC>CHASUS33</BIC></FinInstnId></CdtrAgt>
            <Cdtr>
              <Nm>Golden Gate Tea Co</Nm>
              <PstlAdr><StrtNm>Market Street</StrtNm><BldgNb>1</BldgNb><PstCd>94105</PstCd>
                <TwnNm>San Francisco</TwnNm><Ctry>US</Ctry></PstlAdr>
            </Cdtr>
            <CdtrAcct><Id><Othr><Id>000123456789</Id></Othr></Id></CdtrAcct>
            <RmtInf><Ustrd>WeChat Pay merchant settlement</Ustrd></RmtInf>
          </CdtTrfTxInf>
          <CdtTrfTxInf>
            <PmtId><EndToEndId>CH-E2E-2</EndToEndId></PmtId>
            <Amt><InstdAmt Ccy="CHF">100.00</InstdAmt></Amt>
            <Cdtr><Nm>Papeterie Bern</Nm><PstlAdr><Ctry>CH</Ctry></PstlAdr></Cdtr>
            <CdtrAcct><Id><IBAN>CH5604835012345678009</IBAN></Id></CdtrAcct>
          </CdtTrfTxInf>
        </PmtInf>
      </CstmrCdtTrfInitn>
    </Document>
    """
)


def test_swiss_pain001_in_the_six_namespace(tmp_path: Path) -> None:
    path = write(tmp_path / "pain001-ch.xml", SIX_PAIN001)
    assert Iso20022Reader().sniff(path, read_head(path))
    records, stats = read(path, tz="Europe/Zurich")
    assert stats.errors == []
    assert [pick(r, "id", "ts", "amount", "currency", "source") for r in records] == [
        ("CH-E2E-1", dt.datetime(2020, 10, 14, 22, tzinfo=UTC), Decimal("1250"), "USD", "pain.001"),
        ("CH-E2E-2", dt.datetime(2020, 10, 14, 22, tzinfo=UTC), Decimal("100"), "CHF", "pain.001"),
    ]  # midnight in Zurich (summer time) on the requested execution date
    assert pick(records[0], *PARTY) == (
        "Uhrenwerk Biel AG", "CH", None, "UBSWCHZH80A", "Golden Gate Tea Co", "US", None, "CHASUS33",
    )  # fmt: skip
    assert records[0]["remittance"] == "WeChat Pay merchant settlement"


def test_six_messages_that_are_no_credit_transfer(tmp_path: Path) -> None:
    six = "http://www.six-interbank-clearing.com/de/"
    for other in ("pain.002.001.03.ch.02.xsd", "pain.008.001.02.ch.01.xsd"):
        text = SIX_PAIN001.replace(f"{six}pain.001.001.03.ch.02.xsd", six + other)
        records, stats = read(write(tmp_path / "other.xml", text))
        assert records == [] and [line for line, _ in errors(stats)] == [line_of(text, "<Document")]
        assert f"namespace '{six}{other}'" in errors(stats)[0][1]


def test_files_that_are_no_message(tmp_path: Path) -> None:
    records, stats = read(write(tmp_path / "empty.xml", ""))
    assert records == [] and errors(stats) == [(1, "XML is not well-formed: no element found")]
    records, stats = read(write(tmp_path / "feed.xml", '<?xml version="1.0"?>\n<rss><channel/></rss>\n'))
    assert records == [] and errors(stats) == [(1, "no ISO 20022 Document element (the root is rss)")]


def test_entities_are_neither_expanded_nor_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doctype = (
        f'<!DOCTYPE Document [<!ENTITY leak SYSTEM "{secret.as_uri()}"><!ENTITY a "AAAAAAAAAA">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
    )
    text = PACS008.replace("<Nm>John Smith</Nm>", "<Nm>John &leak; Smith &b;</Nm>")
    text = text.replace("<Document ", doctype + "<Document ", 1)
    records, stats = read(write(tmp_path / "xxe.xml", text))
    assert records == []
    assert errors(stats) == [
        (3, "the DOCTYPE declares entities, which ISO 20022 messages never use: the file is not read")
    ]


def test_batch_rows_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_rows must be positive"):
        Iso20022Reader().read(write(tmp_path / "a.xml", PACS008), ReadStats(), 0)


# ------------------------------------------------------------------------------------------------
# Volume


def test_twenty_thousand_transactions_in_batches(tmp_path: Path) -> None:
    count, lines_per_tx = 20_000, 5
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{PACS008_V08}">\n<FIToFICstmrCdtTrf>\n'
        "<GrpHdr><MsgId>BULK</MsgId><CreDtTm>2024-06-30T12:00:00Z</CreDtTm><NbOfTxs>20000</NbOfTxs></GrpHdr>\n"
    )
    body = "".join(
        f"<CdtTrfTxInf><PmtId><EndToEndId>E{n}</EndToEndId></PmtId>\n"
        f'<IntrBkSttlmAmt Ccy="USD">{n}.{n % 100:02d}</IntrBkSttlmAmt><IntrBkSttlmDt>2024-07-01</IntrBkSttlmDt>\n'
        f"<Dbtr><Nm>Payer {n}</Nm><PstlAdr><Ctry>US</Ctry></PstlAdr><Id><PrvtId/></Id></Dbtr>\n"
        f"<Cdtr><Nm>Payee {n % 50}</Nm><PstlAdr><Ctry>{'CN' if n % 7 == 0 else 'US'}</Ctry></PstlAdr></Cdtr>\n"
        "</CdtTrfTxInf>\n"
        for n in range(count)
    )
    path = write(tmp_path / "bulk.xml.gz", head + body + "</FIToFICstmrCdtTrf>\n</Document>\n", "gzip")
    stats = ReadStats()
    batches = list(Iso20022Reader().read(path, stats, 4096))
    assert [batch.num_rows for batch in batches] == [4096] * 4 + [count - 4 * 4096]
    assert stats.rows == count and stats.malformed == 0
    table = pa.Table.from_batches(batches)
    first_line = head.count("\n") + 1
    assert table["line"][0].as_py() == first_line
    assert table["line"][-1].as_py() == first_line + (count - 1) * lines_per_tx
    assert table["id"].to_pylist() == [f"E{n}" for n in range(count)]
    assert sum(table["amount"].to_pylist()) == sum(Decimal(f"{n}.{n % 100:02d}") for n in range(count))
    assert table["payee_country"].to_pylist().count("CN") == len(range(0, count, 7))
    assert set(table["payer_type"].to_pylist()) == {"individual"}
