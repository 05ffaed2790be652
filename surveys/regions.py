"""Region sets the `region` question type can use: Mexico's 32 federal entities with INEGI codes."""

from __future__ import annotations

from surveys.definition import Region

MEXICO_STATES: tuple[Region, ...] = (
    Region("01", "Aguascalientes", ("AGS", "AGU", "AGS."), ("Aguas", "Aguasc")),
    Region(
        "02",
        "Baja California",
        ("BC", "B.C.", "BCN"),
        ("Baja California Norte", "Baja Norte", "BC Norte", "Baja California Nte"),
    ),
    Region(
        "03",
        "Baja California Sur",
        ("BCS", "B.C.S."),
        ("Baja Sur", "Baja California del Sur", "BC Sur"),
    ),
    Region("04", "Campeche", ("CAMP", "CAM"), ()),
    Region("05", "Coahuila", ("COAH", "COA"), ("Coahuila de Zaragoza",)),
    Region("06", "Colima", ("COL",), ()),
    Region("07", "Chiapas", ("CHIS", "CHIS.", "CHP", "CHPS"), ()),
    Region("08", "Chihuahua", ("CHIH", "CHH"), ()),
    Region(
        "09",
        "Ciudad de México",
        ("CDMX", "CD MX", "DF", "D.F.", "CMX"),
        (
            "Distrito Federal",
            "México DF",
            "México D.F.",
            "Mexico City",
            "Ciudad de Mex",
            "Ciudad México",
            "Cd de México",
            "Cd México",
            "Cd de Mex",
            "Cd Mex",
            "Capital del país",
        ),
    ),
    Region("10", "Durango", ("DGO", "DUR"), ()),
    Region("11", "Guanajuato", ("GTO",), ()),
    Region("12", "Guerrero", ("GRO",), ()),
    Region("13", "Hidalgo", ("HGO",), ()),
    Region("14", "Jalisco", ("JAL",), ()),
    Region(
        "15",
        "Estado de México",
        ("MEX", "EDOMEX", "EDO MEX", "EDO. MEX."),
        (
            "México",
            "Edomex",
            "Edo Mex",
            "Edo de México",
            "Edo de Mex",
            "Estado de Mex",
            "Estado México",
            "State of Mexico",
            "Mexico State",
        ),
    ),
    Region("16", "Michoacán", ("MICH", "MIC"), ("Michoacán de Ocampo",)),
    Region("17", "Morelos", ("MOR",), ()),
    Region("18", "Nayarit", ("NAY",), ()),
    Region("19", "Nuevo León", ("NL", "N.L.", "NLE"), ()),
    Region("20", "Oaxaca", ("OAX",), ()),
    Region("21", "Puebla", ("PUE",), ()),
    Region("22", "Querétaro", ("QRO", "QRO."), ("Querétaro de Arteaga", "Queretaro Arteaga")),
    Region("23", "Quintana Roo", ("QROO", "Q ROO", "Q. ROO", "ROO"), ("QRoo", "Quintana")),
    Region("24", "San Luis Potosí", ("SLP", "S.L.P."), ("San Luis",)),
    Region("25", "Sinaloa", ("SIN",), ()),
    Region("26", "Sonora", ("SON",), ()),
    Region("27", "Tabasco", ("TAB",), ()),
    Region("28", "Tamaulipas", ("TAMPS", "TAMS", "TAM"), ()),
    Region("29", "Tlaxcala", ("TLAX", "TLX"), ()),
    Region(
        "30",
        "Veracruz",
        ("VER",),
        ("Veracruz de Ignacio de la Llave", "Veracruz Llave", "Veracruz-Llave"),
    ),
    Region("31", "Yucatán", ("YUC",), ()),
    Region("32", "Zacatecas", ("ZAC",), ()),
)

REGION_SETS: dict[str, tuple[Region, ...]] = {"mx-states": MEXICO_STATES}
