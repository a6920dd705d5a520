"""ISO 20022 XML: pacs.008, pain.001 (several versions), an enveloped message and a camt.053 that is not one
of ours; mutated with entities (billion laughs, XXE), deep nesting, huge text, odd encodings and cuts."""

from __future__ import annotations

import random
from pathlib import Path

from fuzz import mutate
from fuzz.generators import Case, capped, raw_mutant

ROOT = Path(__file__).resolve().parents[2]
XSD = "urn:iso:std:iso:20022:tech:xsd:"


def _tx(rng: random.Random, n: int) -> str:
    ccy = rng.choice(("USD", "CNY", "usd", "", "XXXX"))
    amount = rng.choice(("10.00", "500", "1e3", "-1", "0.000001", str(2**70), "9" * 40, "NaN", ""))
    when = rng.choice(("2020-10-15T09:31:12-04:00", "2020-10-15", "0001-01-01T00:00:00+14:00", "2020-02-30",
                       "9999-12-31T23:59:59-14:00", "2020-10-15T09:31:12", ""))  # fmt: skip
    creditor = rng.choice(("Tenpay Payment Technology Co., Ltd.", "WeChat Pay", "Noah Kim", "Tencent"))
    return (
        f"<CdtTrfTxInf><PmtId><InstrId>I-{n}</InstrId><EndToEndId>E2E-{n}</EndToEndId></PmtId>"
        f'<IntrBkSttlmAmt Ccy="{ccy}">{amount}</IntrBkSttlmAmt><AccptncDtTm>{when}</AccptncDtTm>'
        f"<Dbtr><Nm>Mei Chen</Nm><PstlAdr><Ctry>{rng.choice(('US', 'CN', 'us', ''))}</Ctry></PstlAdr></Dbtr>"
        "<DbtrAgt><FinInstnId><BICFI>CHASUS33XXX</BICFI></FinInstnId></DbtrAgt>"
        "<CdtrAgt><FinInstnId><BICFI>BKCHHKHHXXX</BICFI></FinInstnId></CdtrAgt>"
        f"<Cdtr><Nm>{creditor}</Nm><PstlAdr><Ctry>CN</Ctry></PstlAdr></Cdtr>"
        f"<RmtInf><Ustrd>{rng.choice(('Wallet top-up', 'weixin', 'salary'))}</Ustrd></RmtInf></CdtTrfTxInf>"
    )


def pacs008(rng: random.Random) -> str:
    version = rng.choice(("02", "08", "13", "99"))
    body = "".join(_tx(rng, n) for n in range(rng.choice((0, 1, 3, 10))))
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{XSD}pacs.008.001.{version}">\n'
        f"<FIToFICstmrCdtTrf><GrpHdr><MsgId>M1</MsgId><CreDtTm>2020-10-15T09:30:00-04:00</CreDtTm>"
        f"<NbOfTxs>{rng.choice(('1', '-1', str(2**70)))}</NbOfTxs></GrpHdr>\n{body}\n</FIToFICstmrCdtTrf></Document>\n"
    )


def pain001(rng: random.Random) -> str:
    version = rng.choice(("03", "09", "12"))
    date = (
        "<ReqdExctnDt>2024-04-15</ReqdExctnDt>"
        if version == "03"
        else "<ReqdExctnDt><DtTm>2024-04-15T10:00:00+08:00</DtTm></ReqdExctnDt>"
    )
    txs = "".join(
        f"<CdtTrfTxInf><PmtId><EndToEndId>E{n}</EndToEndId></PmtId>"
        f'<Amt><InstdAmt Ccy="USD">{rng.choice(("4200", "1e999", "-0", "12.345678901234567890"))}</InstdAmt></Amt>'
        f"<Cdtr><Nm>{rng.choice(('WeChat Pay', 'Maria'))}</Nm><PstlAdr><Ctry>US</Ctry></PstlAdr></Cdtr>"
        "<RmtInf><Ustrd>weixin</Ustrd></RmtInf></CdtTrfTxInf>"
        for n in range(rng.choice((1, 2, 5)))
    )
    return (
        f'<?xml version="1.0"?>\n<Document xmlns="{XSD}pain.001.001.{version}"><CstmrCdtTrfInitn>'
        f"<GrpHdr><MsgId>P1</MsgId><CreDtTm>2024-04-14T09:00:00Z</CreDtTm><NbOfTxs>1</NbOfTxs></GrpHdr>"
        f"<PmtInf><PmtInfId>PI</PmtInfId>{date}<Dbtr><Nm>Acme</Nm><PstlAdr><Ctry>US</Ctry></PstlAdr></Dbtr>"
        f"<DbtrAgt><FinInstnId><BIC>BOFAUS3N</BIC></FinInstnId></DbtrAgt>{txs}</PmtInf>"
        "</CstmrCdtTrfInitn></Document>\n"
    )


def camt053(rng: random.Random) -> str:
    return (
        f'<?xml version="1.0"?>\n<Document xmlns="{XSD}camt.053.001.08"><BkToCstmrStmt><GrpHdr><MsgId>S</MsgId>'
        '<CreDtTm>2020-10-16T00:00:00Z</CreDtTm></GrpHdr><Stmt><Id>1</Id><Ntry><Amt Ccy="USD">5.00</Amt>'
        "<NtryDtls><TxDtls><RltdPties><Cdtr><Nm>WeChat Pay</Nm></Cdtr></RltdPties></TxDtls></NtryDtls></Ntry>"
        "</Stmt></BkToCstmrStmt></Document>\n"
    )


def example(rng: random.Random) -> str:
    path = ROOT / "examples" / "payments" / "credit-transfers.xml"
    return path.read_text(encoding="utf-8") if path.is_file() else pacs008(rng)


def enveloped(rng: random.Random) -> str:
    inner = pacs008(rng).split("\n", 1)[1]
    return (
        '<?xml version="1.0"?>\n<Envelope xmlns="urn:swift:xsd:envelope">'
        f'<AppHdr xmlns="{XSD}head.001.001.02"><MsgDefIdr>pacs.008.001.08</MsgDefIdr>'
        f"<CreDt>2024-03-01T14:00:00Z</CreDt></AppHdr>{inner}</Envelope>\n"
    )


def _hostile_xml(rng: random.Random, text: str) -> str:
    kind = rng.randrange(10)
    head, _, rest = text.partition("\n")
    if kind == 0:  # billion laughs
        entities = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
        return f"{head}\n<!DOCTYPE Document [{entities}]>\n" + rest.replace("Mei Chen", "&a9;", 1)
    if kind == 1:  # external entities
        target = rng.choice(("file:///etc/passwd", "http://127.0.0.1:9/x", "/dev/zero", "file:///proc/self/environ"))
        dtd = (
            f'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "{target}">]>'
            if rng.random() < 0.7
            else (f'<!DOCTYPE Document SYSTEM "{target}">')
        )
        return f"{head}\n{dtd}\n" + rest.replace("Mei Chen", "&xxe;", 1).replace("Acme", "&xxe;", 1)
    if kind == 2:  # deep nesting
        depth = rng.choice((100, 1000, 10000, 100000))
        return text.replace("<Nm>", "<Nm>" + "<x>" * depth, 1).replace("</Nm>", "</x>" * depth + "</Nm>", 1)
    if kind == 3:  # huge text and attributes
        big = "W" * rng.choice((10**5, 10**6))
        return text.replace("Wallet top-up", big, 1).replace('Ccy="USD"', f'Ccy="{big}"', 1)
    if kind == 4:
        return text.replace("UTF-8", rng.choice(("UTF-16", "latin-1", "EBCDIC", "nope", "UTF-32")), 1)
    if kind == 5:  # many transactions, many attributes
        tx = _tx(rng, 0)
        return text.replace("</FIToFICstmrCdtTrf>", tx * rng.choice((100, 3000)) + "</FIToFICstmrCdtTrf>", 1)
    if kind == 6:
        return text.replace("<", "<" + rng.choice(("ns:", "\x00", " ", "!")), rng.randint(1, 3))
    if kind == 7:  # processing instructions, CDATA, comments where values belong
        return text.replace(
            "Mei Chen", rng.choice(("<![CDATA[Tenpay]]>", "<!-- c -->Tenpay", "<?pi x?>", "&#0;", "&#xD800;"))
        )
    if kind == 8:
        return text.replace("xmlns=", rng.choice(("xmlns:a=", 'xmlns="" x=', "xmlns:xmlns=")), 1)
    return text[: rng.randrange(len(text) + 1)]


def gen(rng: random.Random) -> Case:
    text = rng.choices((pacs008, pain001, camt053, example, enveloped), (30, 25, 8, 15, 10))[0](rng)
    if rng.random() < 0.6:
        text = _hostile_xml(rng, text)
    if rng.random() < 0.2:
        text = mutate.line_ends(rng, text)
    data = text.encode("utf-16") if "UTF-16" in text[:60] and rng.random() < 0.5 else mutate.encode_text(rng, text)
    name = rng.choice(("pay.xml", "pay.xml", "pay.XML", "pay.xml.gz", "pay.xml.zst"))
    if name.endswith(".gz"):
        import gzip

        data = gzip.compress(data, mtime=0)
    elif name.endswith(".zst"):
        from fuzz.generators.compress import zstd

        data = zstd(data)
    if rng.random() < 0.05:
        data = data[: rng.randrange(len(data) + 1)]
    return Case(name, data)


payment_xml = capped(raw_mutant(gen, rate=0.15))
