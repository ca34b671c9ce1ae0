//! The pools the demo table draws from: names by language, countries with their cities and
//! streets, companies, and payment-card test numbers. Kept unformatted so that each list stays
//! readable as a block.

/// Name pools by language; a country borrows the pool of its main language.
pub(super) struct Names {
    pub(super) first: &'static [&'static str],
    pub(super) last: &'static [&'static str],
    /// Spanish names carry two family names.
    pub(super) two_surnames: bool,
}

pub(super) static EN: Names = Names {
    first: &[
        "James", "Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Sophia", "Mason", "Isabella",
        "Lucas", "Mia", "Aiden", "Charlotte", "Priya", "Wei", "Aisha", "Mateo", "Grace", "Connor",
        "Siobhan", "Declan", "Chloe", "Jack", "Ruby", "Oliver", "Amelia", "Hiroshi", "Fatima",
        "Daniel", "Zoe", "Samuel", "Nia", "Rahul", "Eleanor", "Tomás",
    ],
    last: &[
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson",
        "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Lee", "Walker", "Patel", "Nguyen",
        "Kim", "O'Brien", "Murphy", "Kelly", "Chen", "Singh", "Robinson", "Clarke", "Hughes",
        "Evans", "Campbell", "Byrne", "Okafor", "Novak",
    ],
    two_surnames: false,
};

pub(super) static DE: Names = Names {
    first: &[
        "Lukas", "Anna", "Leon", "Mia", "Felix", "Hannah", "Jonas", "Lea", "Paul", "Laura",
        "Maximilian", "Sophie", "Elias", "Marie", "Tobias", "Katharina", "Jürgen", "Sabine",
        "Ömer", "Zeynep",
    ],
    last: &[
        "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
        "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz",
        "Zimmermann", "Braun", "Krüger", "Yılmaz", "Weiß",
    ],
    two_surnames: false,
};

pub(super) static FR: Names = Names {
    first: &[
        "Lucas", "Emma", "Hugo", "Léa", "Louis", "Chloé", "Gabriel", "Manon", "Arthur", "Camille",
        "Jules", "Inès", "Théo", "Sarah", "Raphaël", "Zoé", "François", "Amélie", "Mohamed",
        "Élodie",
    ],
    last: &[
        "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
        "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
        "Vincent", "Fournier",
    ],
    two_surnames: false,
};

pub(super) static NL: Names = Names {
    first: &[
        "Daan", "Emma", "Sem", "Julia", "Lucas", "Mila", "Levi", "Tess", "Finn", "Sophie", "Milan",
        "Zoë", "Bram", "Fenna", "Thijs", "Anouk",
    ],
    last: &[
        "de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser",
        "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters",
    ],
    two_surnames: false,
};

pub(super) static ES: Names = Names {
    first: &[
        "Hugo", "Lucía", "Martín", "Sofía", "Pablo", "María", "Daniel", "Paula", "Alejandro",
        "Julia", "Álvaro", "Carmen", "Javier", "Elena", "Diego", "Laura", "José", "Marta",
    ],
    last: &[
        "García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez",
        "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez",
        "Romero",
    ],
    two_surnames: true,
};

/// A city: its name, region as written in addresses, the start of its postal codes, and the
/// landline area code used for its phone numbers.
pub(super) struct City {
    pub(super) name: &'static str,
    pub(super) region: Option<&'static str>,
    pub(super) postal: &'static str,
    pub(super) area: &'static str,
}

pub(super) const fn city(
    name: &'static str,
    region: Option<&'static str>,
    postal: &'static str,
    area: &'static str,
) -> City {
    City {
        name,
        region,
        postal,
        area,
    }
}

pub(super) struct Country {
    pub(super) code: &'static str,
    pub(super) name: &'static str,
    pub(super) names: &'static Names,
    pub(super) cities: &'static [City],
    pub(super) streets: &'static [&'static str],
    /// How likely a customer is to live here, relative to the other countries.
    pub(super) weight: u64,
}

pub(super) static COUNTRIES: &[Country] = &[
    Country {
        code: "US",
        name: "United States",
        names: &EN,
        cities: &[
            city("New York", Some("NY"), "100", "212"),
            city("San Francisco", Some("CA"), "941", "415"),
            city("Austin", Some("TX"), "787", "512"),
            city("Chicago", Some("IL"), "606", "312"),
            city("Seattle", Some("WA"), "981", "206"),
            city("Boston", Some("MA"), "021", "617"),
            city("Denver", Some("CO"), "802", "303"),
        ],
        streets: &[
            "Maple Avenue", "Oak Street", "Main Street", "Cedar Lane", "Elm Street",
            "Washington Boulevard", "Park Avenue", "Lakeview Drive", "Pine Street", "Sunset Road",
        ],
        weight: 30,
    },
    Country {
        code: "CA",
        name: "Canada",
        names: &EN,
        cities: &[
            city("Toronto", Some("ON"), "M5V", "416"),
            city("Vancouver", Some("BC"), "V6B", "604"),
            city("Montréal", Some("QC"), "H2X", "514"),
        ],
        streets: &[
            "King Street West", "Granville Street", "Rue Sainte-Catherine", "Queen Street",
            "Yonge Street",
        ],
        weight: 8,
    },
    Country {
        code: "GB",
        name: "United Kingdom",
        names: &EN,
        cities: &[
            city("London", None, "NW1", "20"),
            city("Manchester", None, "M1", "161"),
            city("Edinburgh", None, "EH1", "131"),
            city("Bristol", None, "BS1", "117"),
        ],
        streets: &[
            "High Street", "Station Road", "Baker Street", "Church Lane", "Victoria Road",
            "Mill Lane",
        ],
        weight: 14,
    },
    Country {
        code: "IE",
        name: "Ireland",
        names: &EN,
        cities: &[
            city("Dublin", None, "D02", "1"),
            city("Cork", None, "T12", "21"),
        ],
        streets: &[
            "Grafton Street", "Main Street", "Patrick Street", "Dame Street",
        ],
        weight: 5,
    },
    Country {
        code: "AU",
        name: "Australia",
        names: &EN,
        cities: &[
            city("Sydney", Some("NSW"), "20", "2"),
            city("Melbourne", Some("VIC"), "30", "3"),
            city("Brisbane", Some("QLD"), "40", "7"),
        ],
        streets: &[
            "George Street", "Collins Street", "Queen Street", "Bourke Street", "Pitt Street",
        ],
        weight: 8,
    },
    Country {
        code: "DE",
        name: "Germany",
        names: &DE,
        cities: &[
            city("Berlin", None, "101", "30"),
            city("München", None, "803", "89"),
            city("Hamburg", None, "200", "40"),
            city("Köln", None, "506", "221"),
        ],
        streets: &[
            "Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Lindenallee",
            "Goethestraße",
        ],
        weight: 12,
    },
    Country {
        code: "FR",
        name: "France",
        names: &FR,
        cities: &[
            city("Paris", None, "750", "1"),
            city("Lyon", None, "690", "4"),
            city("Marseille", None, "130", "4"),
        ],
        streets: &[
            "rue de la Paix", "avenue Victor Hugo", "rue du Faubourg Saint-Antoine",
            "boulevard Voltaire", "rue de la République",
        ],
        weight: 10,
    },
    Country {
        code: "NL",
        name: "Netherlands",
        names: &NL,
        cities: &[
            city("Amsterdam", None, "10", "20"),
            city("Rotterdam", None, "30", "10"),
            city("Utrecht", None, "35", "30"),
        ],
        streets: &[
            "Keizersgracht", "Prinsengracht", "Coolsingel", "Oudegracht", "Damrak",
        ],
        weight: 6,
    },
    Country {
        code: "ES",
        name: "Spain",
        names: &ES,
        cities: &[
            city("Madrid", None, "280", "91"),
            city("Barcelona", None, "080", "93"),
            city("Valencia", None, "460", "96"),
        ],
        streets: &[
            "Calle Mayor", "Gran Vía", "Paseo de Gracia", "Calle de Alcalá", "Avenida del Puerto",
        ],
        weight: 7,
    },
];

pub(super) static COMPANIES: &[&str] = &[
    "Northwind Traders", "Contoso Ltd", "Fabrikam Inc", "Tailspin Toys", "Wide World Importers",
    "Adventure Works", "Litware Inc", "Proseware", "Woodgrove Bank", "Blue Yonder Airlines",
    "Alpine Ski House", "Coho Winery", "Lamna Healthcare", "Fourth Coffee", "Humongous Insurance",
    "Margie's Travel", "Trey Research", "Wingtip Toys", "Relecloud", "Initech",
    "Globex Corporation", "Vandelay Industries", "Acme Corporation", "Pied Piper", "Hooli",
    "Bluth Company", "Dunder Mifflin", "Cyberdyne Systems", "Tyrell Corporation",
    "Oceanic Airlines", "Kraftwerk Logistik GmbH", "Lumière Conseil SARL", "Molenaar Techniek BV",
    "Sol y Mar Turismo SL", "Brightwater Analytics", "Harbour & Finch LLP", "Quantum Quokka Labs",
    "Greenfield Agritech",
];

pub(super) const PERSONAL_DOMAINS: &[&str] = &["example.com", "example.org", "example.net", "mail.example"];

pub(super) const MONTHS: &[&str] = &[
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
];

/// Payment card numbers from the networks' published test ranges (all Luhn-valid): realistic
/// to a detector, useless to anyone else.
pub(crate) const TEST_CARDS: &[&str] = &[
    "4111111111111111", "4242424242424242", "4012888888881881", "4000056655665556",
    "5555555555554444", "5105105105105100", "2223003122003222", "5200828282828210",
    "378282246310005", "371449635398431", "6011111111111117", "6011000990139424",
    "3056930009020004", "3566002020360505",
];
