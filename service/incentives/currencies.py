"""Which currencies an airtime top-up can be in, by the phone number's country (ISO 3166 -> ISO 4217).

Airtime is sold in the operator's local currency, so a survey that pays MXN cannot top up a US number. Used to
warn staff when they import a number that their survey could not pay.
"""

from __future__ import annotations

_BY_CURRENCY = {
    "USD": "US PR VI GU AS MP UM EC SV PA TL FM MH PW TC VG BQ IO ZW",
    "EUR": "AD AT BE CY DE EE ES FI FR GR HR IE IT LT LU LV MC ME MT NL PT SI SK SM VA XK GF GP MQ RE YT PM BL "
           "MF AX TF",
    "XCD": "AG DM GD KN LC VC AI MS", "XOF": "BJ BF CI GW ML NE SN TG", "XAF": "CM CF TD CG GQ GA",
    "XPF": "PF NC WF", "AUD": "AU CX CC NF NR TV KI HM", "NZD": "NZ CK NU PN TK", "GBP": "GB IM JE GG GS",
    "CHF": "CH LI", "DKK": "DK FO GL", "NOK": "NO SJ BV", "INR": "IN BT", "ZAR": "ZA LS NA", "ILS": "IL PS",
    "MAD": "MA EH", "ANG": "CW SX",
}
_ONE_COUNTRY = (
    "MX:MXN CA:CAD GT:GTQ HN:HNL NI:NIO CR:CRC BZ:BZD CU:CUP DO:DOP HT:HTG JM:JMD BS:BSD BB:BBD TT:TTD KY:KYD "
    "BM:BMD AW:AWG CO:COP VE:VES PE:PEN BO:BOB CL:CLP AR:ARS UY:UYU PY:PYG BR:BRL GY:GYD SR:SRD FK:FKP PA:PAB "
    "AL:ALL AM:AMD AZ:AZN BA:BAM BG:BGN BY:BYN CZ:CZK GE:GEL HU:HUF IS:ISK MD:MDL MK:MKD PL:PLN RO:RON RS:RSD "
    "RU:RUB SE:SEK TR:TRY UA:UAH GI:GIP AF:AFN AE:AED BD:BDT BH:BHD BN:BND CN:CNY HK:HKD ID:IDR IQ:IQD IR:IRR "
    "JO:JOD JP:JPY KG:KGS KH:KHR KP:KPW KR:KRW KW:KWD KZ:KZT LA:LAK LB:LBP LK:LKR MM:MMK MN:MNT MO:MOP MV:MVR "
    "MY:MYR NP:NPR OM:OMR PH:PHP PK:PKR QA:QAR SA:SAR SG:SGD SY:SYP TH:THB TJ:TJS TM:TMT TW:TWD UZ:UZS VN:VND "
    "YE:YER AO:AOA BI:BIF BW:BWP CD:CDF CV:CVE DJ:DJF DZ:DZD EG:EGP ER:ERN ET:ETB GH:GHS GM:GMD GN:GNF KE:KES "
    "KM:KMF LR:LRD LY:LYD MG:MGA MR:MRU MU:MUR MW:MWK MZ:MZN NG:NGN RW:RWF SC:SCR SD:SDG SL:SLE SO:SOS SS:SSP "
    "ST:STN SZ:SZL TN:TND TZ:TZS UG:UGX ZM:ZMW SH:SHP FJ:FJD PG:PGK SB:SBD TO:TOP VU:VUV WS:WST BT:BTN LS:LSL "
    "NA:NAD"
)


def _table() -> dict[str, frozenset[str]]:
    table: dict[str, set[str]] = {}
    for currency, countries in _BY_CURRENCY.items():
        for country in countries.split():
            table.setdefault(country, set()).add(currency)
    for pair in _ONE_COUNTRY.split():
        country, currency = pair.split(":")
        table.setdefault(country, set()).add(currency)
    return {country: frozenset(currencies) for country, currencies in table.items()}


LOCAL_CURRENCIES = _table()


def can_top_up(country: str | None, currency: str) -> bool | None:
    """Whether airtime in `currency` can reach a number of `country`; None when the country is not known here."""
    local = LOCAL_CURRENCIES.get((country or "").upper())
    return None if local is None else currency.upper() in local
