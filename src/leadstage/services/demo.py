"""The demo company: a realistic, deterministic synthetic B2B funnel behind ``leadstage demo``.

The fictional vendor sells freight-cost analytics to companies that move goods. One generator
serves both the database (:func:`generate_demo`) and the benchmark files
(``adapters/demo_files.py``):

- :func:`iter_people` yields the people, grouped by company (accounts across industries, sizes and
  countries; leads with names, titles and seniority, a few students and job seekers on free mail);
- :func:`simulate_journey` tells one person's whole story: twelve months of activities (bursts after
  creation that decay, a weekday and working-hour bias) and every stage change, each one computed by
  the pure transition table (:func:`leadstage.domain.stages.plan_transition`), with BANT recorded
  before ``qualify_sql``.

Each person carries a hidden propensity (from seniority, company size, industry fit, department,
country and source, plus noise): high-propensity people engage more, are accepted and qualified more
often and win more, so fit and engagement genuinely predict the outcome. Every random number comes
from two ``random.Random`` streams derived from the seed (:func:`demo_randoms`): the same seed and
``now`` give the same company, and the same seed alone gives the same people.
"""

from __future__ import annotations

import json
import math
import random
import unicodedata
from bisect import bisect
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import Any

from leadstage.domain.leads import Account, Identity, Lead, PropertyType, PropertyValue
from leadstage.domain.qualification import BANT, evaluate
from leadstage.domain.stages import (
    LOSS_REASONS,
    Actor,
    HistoryEntry,
    LeadState,
    QualificationCheck,
    Role,
    Stage,
    Status,
    TransitionRequest,
    creation_entry,
    initial_state,
    plan_transition,
)
from leadstage.domain.times import utc_text
from leadstage.services.ports import (
    ActivityRow,
    IdentityNormalizer,
    NullProgress,
    Progress,
    UnitOfWork,
    UnitOfWorkFactory,
)
from leadstage.services.users import add_user

# ---- the team ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamMember:
    username: str
    role: Role
    team: str
    territory: str | None = None


#: The demo company's revenue team: a manager and four reps with territories, and a marketer.
DEMO_TEAM: tuple[TeamMember, ...] = (
    TeamMember("olivia.grant", Role.SALES_MANAGER, "sales"),
    TeamMember("ben.carter.na-east", Role.SALES_REP, "sales", "NA-East"),
    TeamMember("sofia.reyes.na-west", Role.SALES_REP, "sales", "NA-West"),
    TeamMember("lukas.weber.emea-central", Role.SALES_REP, "sales", "EMEA-Central"),
    TeamMember("emma.hughes.emea-west", Role.SALES_REP, "sales", "EMEA-West"),
    TeamMember("nina.patel", Role.MARKETING, "marketing"),
)


@dataclass(frozen=True)
class Team:
    """The actors of the stories: reps by territory, the manager, marketing and the system."""

    reps: Mapping[str, Actor]
    manager: Actor
    marketing: Actor
    system: Actor = field(default_factory=Actor.system)

    @property
    def size(self) -> int:
        return len(self.reps) + 2


def team_from_ids(ids: Mapping[str, int]) -> Team:
    """The demo team as actors, given each member's user id (by username)."""
    reps: dict[str, Actor] = {}
    manager = marketing = None
    for member in DEMO_TEAM:
        actor = Actor(
            name=member.username, role=member.role, user_id=ids.get(member.username), team=member.team
        )
        if member.role is Role.SALES_REP and member.territory:
            reps[member.territory] = actor
        elif member.role is Role.SALES_MANAGER:
            manager = actor
        elif member.role is Role.MARKETING:
            marketing = actor
    assert manager is not None
    assert marketing is not None
    return Team(reps=reps, manager=manager, marketing=marketing)


def offline_team() -> Team:
    """The demo team with stand-in user ids, for generating files without a database."""
    return team_from_ids({m.username: i for i, m in enumerate(DEMO_TEAM, start=1)})


# ---- the catalogue -----------------------------------------------------------------------------------


def _table(text: str) -> list[list[str]]:
    """Rows of a ``|``-separated text table (one row a line)."""
    return [[cell.strip() for cell in line.split("|")] for line in text.strip().splitlines()]


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class Country:
    key: str
    name: str
    tld: str
    tz: float  # typical offset from UTC in hours, for working-hour bias
    weight: float
    icp: float  # 1.0 inside the ideal customer profile's geography
    currency: str
    names: str  # which name list people here are drawn from
    territory: str
    free_mail: tuple[str, ...]
    legal: tuple[str, ...]


# key | name | tld | UTC offset | weight | ICP geography | currency | names | territory | free mail | legal forms
_COUNTRY_TABLE = """
US-E | United States  | com    | -5  | 21 | 1.0 | USD | en     | NA-East      | gmail.com, gmail.com, outlook.com, yahoo.com, hotmail.com, icloud.com, aol.com | Inc., LLC, Corp.
US-W | United States  | com    | -8  | 15 | 1.0 | USD | en     | NA-West      | gmail.com, gmail.com, outlook.com, yahoo.com, icloud.com | Inc., LLC, Co.
CA   | Canada         | ca     | -5  | 6  | 1.0 | CAD | en     | NA-East      | gmail.com, outlook.com, hotmail.com, yahoo.com | Inc., Ltd.
UK   | United Kingdom | co.uk  | 0   | 12 | 1.0 | GBP | en     | EMEA-West    | gmail.com, outlook.com, hotmail.co.uk, yahoo.co.uk, btinternet.com | Ltd, plc
DE   | Germany        | de     | 1   | 12 | 1.0 | EUR | de     | EMEA-Central | gmail.com, gmx.de, web.de, t-online.de, outlook.com | GmbH, AG, GmbH & Co. KG
NL   | Netherlands    | nl     | 1   | 6  | 1.0 | EUR | nl     | EMEA-Central | gmail.com, outlook.com, hotmail.com | B.V., N.V.
FR   | France         | fr     | 1   | 7  | 0.9 | EUR | fr     | EMEA-West    | gmail.com, orange.fr, free.fr, hotmail.fr, laposte.net | SAS, SA
SE   | Sweden         | se     | 1   | 3  | 0.9 | SEK | nordic | EMEA-Central | gmail.com, outlook.com, hotmail.com | AB
ES   | Spain          | es     | 1   | 4  | 0.8 | EUR | es     | EMEA-West    | gmail.com, hotmail.com, yahoo.com | S.L., S.A.
AU   | Australia      | com.au | 10  | 4  | 0.8 | AUD | en     | NA-West      | gmail.com, outlook.com, bigpond.com | Pty Ltd
IN   | India          | in     | 5.5 | 6  | 0.6 | USD | in     | EMEA-West    | gmail.com, yahoo.co.in, rediffmail.com | Pvt. Ltd.
BR   | Brazil         | com.br | -3  | 4  | 0.6 | USD | es     | NA-West      | gmail.com, hotmail.com, outlook.com | Ltda., S.A.
"""
COUNTRIES: tuple[Country, ...] = tuple(
    Country(k, n, tld, float(tz), float(w), float(icp), cur, names, terr, _names(free), _names(legal))
    for k, n, tld, tz, w, icp, cur, names, terr, free, legal in _table(_COUNTRY_TABLE)
)

_FIRST: Mapping[str, tuple[str, ...]] = {
    "en": _names(
        "James, Mary, Robert, Patricia, Michael, Jennifer, David, Linda, Daniel, Sarah, Chris, Emily, Kevin, "
        "Laura, Brian, Megan, Jason, Rachel, Tyler, Olivia, Ethan, Grace, Marcus, Hannah, Andrew, Jessica, "
        "Ryan, Nicole, Aaron, Samantha, Derek, Aisha, Omar, Mei, Wei, Priya, Carlos, Sean, Fiona, Liam"
    ),
    "de": _names(
        "Lukas, Anna, Jonas, Lena, Felix, Laura, Maximilian, Julia, Tobias, Katharina, Florian, Sophie, Jan, "
        "Marie, Stefan, Sabine, Matthias, Jürgen, Claudia, Andreas"
    ),
    "fr": _names(
        "Camille, Louis, Léa, Hugo, Chloé, Nicolas, Manon, Julien, Antoine, Claire, Mathieu, Élodie, Pierre, "
        "Sophie, Thomas, Inès"
    ),
    "nl": _names("Daan, Emma, Sem, Julia, Lucas, Sanne, Bram, Lotte, Thijs, Fleur, Joris, Eva"),
    "es": _names(
        "Carlos, María, Javier, Lucía, Alejandro, Sofía, Diego, Carmen, Pablo, Valentina, Andrés, Isabel, "
        "João, Ana, Pedro, Beatriz, Rafael, Camila"
    ),
    "nordic": _names("Erik, Astrid, Lars, Ingrid, Johan, Elin, Anders, Maja, Nils, Freja, Oskar, Sara"),
    "in": _names("Arjun, Priya, Rahul, Ananya, Vikram, Sneha, Rohan, Kavya, Aditya, Neha, Karthik, Divya"),
}
_LAST: Mapping[str, tuple[str, ...]] = {
    "en": _names(
        "Smith, Johnson, Williams, Brown, Jones, Miller, Davis, Wilson, Anderson, Taylor, Thomas, Moore, "
        "Martin, Thompson, White, Harris, Clark, Lewis, Walker, Hall, Young, King, Wright, Scott, Green, "
        "Baker, Adams, Nelson, Carter, Mitchell, Roberts, Turner, Phillips, Campbell, Parker, Evans, Edwards, "
        "Collins, Murphy, O'Brien, Nguyen, Chen, Patel, Kim, Rivera, Foster, Hughes, Bennett"
    ),
    "de": _names(
        "Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, Hoffmann, Koch, Richter, "
        "Klein, Wolf, Schröder, Neumann, Zimmermann, Braun, Krüger, Hartmann"
    ),
    "fr": _names(
        "Martin, Bernard, Dubois, Thomas, Robert, Richard, Petit, Durand, Leroy, Moreau, Simon, Laurent, "
        "Lefebvre, Michel, Fournier, Girard, Bonnet, Mercier"
    ),
    "nl": _names(
        "de Jong, Jansen, de Vries, van den Berg, van Dijk, Bakker, Visser, Smit, Meijer, de Boer, Mulder, Bos"
    ),
    "es": _names(
        "García, Rodríguez, Martínez, López, González, Pérez, Sánchez, Ramírez, Torres, Flores, Silva, Santos, "
        "Oliveira, Souza, Costa, Pereira"
    ),
    "nordic": _names(
        "Andersson, Johansson, Karlsson, Nilsson, Eriksson, Larsson, Olsson, Persson, Svensson, Lindberg"
    ),
    "in": _names("Sharma, Patel, Iyer, Reddy, Gupta, Nair, Singh, Kumar, Mehta, Rao, Joshi, Menon"),
}


@dataclass(frozen=True)
class Industry:
    name: str
    fit: float
    weight: float
    cores: tuple[str, ...]
    revenue_per_employee: float  # USD thousands


# name | fit with the ICP | weight | words for company names | revenue per employee (USD k)
_INDUSTRY_TABLE = """
Logistics & Transportation | 0.95 | 14 | Logistics, Freight, Transport, Cargo, Shipping, Haulage | 180
Manufacturing              | 0.85 | 16 | Manufacturing, Industries, Components, Works, Fabrication | 260
Wholesale & Distribution   | 0.85 | 10 | Distribution, Supply, Wholesale, Trading | 420
Retail & E-commerce        | 0.75 | 12 | Retail, Commerce, Goods, Stores, Outfitters | 230
Food & Beverage            | 0.65 | 7  | Foods, Beverages, Provisions, Farms | 250
Automotive                 | 0.7  | 5  | Automotive, Motors, Parts | 300
Chemicals                  | 0.6  | 4  | Chemicals, Materials, Polymers | 380
Construction               | 0.45 | 5  | Construction, Builders, Building Supply | 240
Healthcare                 | 0.35 | 6  | Health, Medical, Care | 170
Software                   | 0.25 | 8  | Software, Labs, Systems, Technologies | 210
Financial Services         | 0.25 | 5  | Capital, Financial, Partners | 350
Professional Services      | 0.3  | 5  | Consulting, Advisors, Group | 160
Education                  | 0.1  | 3  | Academy, Learning, Institute | 90
Media                      | 0.1  | 3  | Media, Studios, Publishing | 200
"""
INDUSTRIES: tuple[Industry, ...] = tuple(
    Industry(name, float(fit), float(weight), _names(cores), float(rpe))
    for name, fit, weight, cores, rpe in _table(_INDUSTRY_TABLE)
)

_PREFIXES = _names(
    "Nordwind, Blue Harbor, Apex, Summit, Ironbridge, Cedar, Meridian, Northstar, Red Rock, Silverline, "
    "Keystone, Granite, Lakeside, Pioneer, Atlas, Beacon, Crescent, Evergreen, Falcon, Horizon, Juniper, "
    "Kestrel, Lighthouse, Maple, Oakridge, Pinnacle, Quarry, Riverbend, Sequoia, Tidewater, Union, Vanguard, "
    "Westgate, Zenith, Alder, Bristol, Copperfield, Delta, Elmwood, Fjord, Greenfield, Highland, Ironwood, "
    "Jasper, Kingsway, Linden, Mistral, Northgate, Orchard, Polaris, Rhein, Saxon, Thames, Vista, Windmill, "
    "Alpen, Baltic, Cobalt, Dunmore, Everest, Fairway, Glacier, Harborview, Lindqvist, Marlow, Osprey, "
    "Prairie, Redwood, Stonegate, Trident"
)

_NAME_TAILS = ("Group", "International", "Holdings", "Partners", "Global", "Direct", "Solutions", "& Co")

#: Company size bands: (label, low, high, weight, size fit).
EMPLOYEE_BANDS: tuple[tuple[str, int, int, float, float], ...] = (
    ("1-10", 1, 10, 12, 0.15),
    ("11-50", 11, 50, 24, 0.4),
    ("51-200", 51, 200, 26, 0.7),
    ("201-1000", 201, 1000, 20, 0.9),
    ("1001-5000", 1001, 5000, 11, 0.85),
    ("5001+", 5001, 60000, 7, 0.65),
)

SENIORITIES: tuple[str, ...] = (
    "C-level",
    "VP",
    "Director",
    "Manager",
    "Individual contributor",
    "Student",
    "Job seeker",
)
_SENIORITY_FIT: Mapping[str, float] = {
    "C-level": 0.85,
    "VP": 0.95,
    "Director": 0.85,
    "Manager": 0.6,
    "Individual contributor": 0.3,
    "Student": 0.0,
    "Job seeker": 0.0,
}
_AUTHORITY: Mapping[str, float] = {
    "C-level": 0.95,
    "VP": 0.9,
    "Director": 0.75,
    "Manager": 0.45,
    "Individual contributor": 0.2,
    "Student": 0.0,
    "Job seeker": 0.0,
}
_DEPARTMENTS: tuple[tuple[str, float, float], ...] = (
    # name, weight, fit
    ("Logistics", 22, 1.0),
    ("Supply Chain", 16, 0.95),
    ("Finance", 18, 0.9),
    ("Operations", 16, 0.85),
    ("Procurement", 10, 0.8),
    ("IT", 8, 0.45),
    ("Marketing", 5, 0.15),
    ("Engineering", 5, 0.15),
)
_C_TITLES: Mapping[str, tuple[str, ...]] = {
    "Logistics": ("Chief Operating Officer", "Chief Logistics Officer"),
    "Supply Chain": ("Chief Supply Chain Officer",),
    "Finance": ("Chief Financial Officer", "CFO"),
    "Operations": ("Chief Operating Officer", "COO"),
    "Procurement": ("Chief Procurement Officer",),
    "IT": ("Chief Information Officer", "CTO"),
    "Marketing": ("Chief Marketing Officer",),
    "Engineering": ("CTO", "Founder & CEO"),
}
_IC_TITLES: Mapping[str, tuple[str, ...]] = {
    "Logistics": ("Logistics Analyst", "Freight Coordinator", "Transportation Planner"),
    "Supply Chain": ("Supply Chain Analyst", "Demand Planner"),
    "Finance": ("Financial Analyst", "FP&A Analyst", "Accountant"),
    "Operations": ("Operations Specialist", "Operations Analyst"),
    "Procurement": ("Buyer", "Procurement Specialist"),
    "IT": ("Data Analyst", "Systems Administrator", "BI Developer"),
    "Marketing": ("Marketing Specialist", "Content Marketer"),
    "Engineering": ("Software Engineer", "Data Engineer"),
}
_MANAGER_TITLES: Mapping[str, tuple[str, ...]] = {
    "Logistics": ("Logistics Manager", "Transportation Manager", "Warehouse Manager"),
    "Supply Chain": ("Supply Chain Manager",),
    "Finance": ("Finance Manager", "FP&A Manager", "Controller"),
    "Operations": ("Operations Manager",),
    "Procurement": ("Procurement Manager", "Category Manager"),
    "IT": ("IT Manager",),
    "Marketing": ("Marketing Manager",),
    "Engineering": ("Engineering Manager",),
}
_STUDENT_TITLES = ("Student", "MSc Supply Chain Management Student", "MBA Candidate", "Logistics Intern")
_SEEKER_TITLES = ("Looking for new opportunities", "Open to work", "Former Logistics Coordinator", "")

#: Channels (names from ``domain.activities.SOURCES``): weight, quality, the lead origin they imply.
CHANNELS: tuple[tuple[str, float, float, str], ...] = (
    ("organic_search", 24, 0.5, "Landing Page Submission"),
    ("paid_search", 15, 0.45, "Landing Page Submission"),
    ("social", 5, 0.3, "Landing Page Submission"),
    ("paid_social", 7, 0.3, "Lead Add Form"),
    ("email", 7, 0.4, "Newsletter Signup"),
    ("referral", 7, 0.85, "Referral Form"),
    ("event", 9, 0.65, "Event Import"),
    ("direct", 6, 0.5, "Landing Page Submission"),
    ("partner", 6, 0.7, "Partner API"),
    ("call_in", 4, 0.8, "Phone Inquiry"),
    ("chat", 7, 0.55, "Chat"),
)
_CHANNEL_QUALITY = {name: quality for name, _w, quality, _o in CHANNELS}

#: Content assets that campaigns promote (``content`` of activities).
WEBINARS: tuple[str, ...] = (
    "Webinar: Forecasting Freight Costs",
    "Webinar: Carrier Scorecards That Work",
    "Webinar: Landed Cost in a Tariff Year",
    "Webinar: From Spreadsheets to a Freight Control Tower",
)
EBOOKS: tuple[str, ...] = (
    "eBook: The Logistics CFO Playbook",
    "eBook: 7 Ways to Cut Freight Spend",
    "eBook: Carrier Contract Negotiation Guide",
    "eBook: The State of Freight Costs Report",
)
CASE_STUDIES: tuple[str, ...] = (
    "Case Study: How Nordwind Logistics Cut Freight Spend 14%",
    "Case Study: Summit Foods Forecasts Freight to the Cent",
)
TRADE_SHOWS: tuple[str, ...] = (
    "Supply Chain Summit Chicago",
    "Freight Tech Expo Rotterdam",
    "CFO Forum London",
    "Logistics Leaders Berlin",
    "Retail Ops Week Dallas",
)
PAGES: tuple[tuple[str, float], ...] = (
    ("/", 20),
    ("/product", 12),
    ("/product/forecasting", 8),
    ("/product/carrier-scorecards", 6),
    ("/integrations", 5),
    ("/customers", 6),
    ("/blog/freight-rate-outlook", 9),
    ("/blog/fuel-surcharges-explained", 7),
    ("/resources", 6),
    ("/about", 3),
)
_EMAILS = (
    "Monthly newsletter",
    "Webinar invitation",
    "New eBook",
    "Customer story",
    "Product update",
    "Freight rate outlook",
)

ACTIVITY_POINTS: Mapping[str, int] = {
    "page_view": 2,
    "email_open": 1,
    "email_click": 3,
    "content_download": 8,
    "webinar_registered": 5,
    "webinar_attended": 12,
    "form_submit": 8,
    "ad_click": 2,
    "social_engagement": 1,
    "chat": 6,
    "event_attended": 12,
    "free_trial": 20,
    "unsubscribe": -10,
}
_PAGE_POINTS = {"/pricing": 8, "/demo": 10, "/careers": -5}
MQL_FIT = 55
MQL_POINTS = 40
MQL_POINTS_ALONE = 90
MQL_WINDOW = timedelta(days=30)

#: Custom lead properties of the demo company and their types.
LEAD_PROPERTY_TYPES: Mapping[str, PropertyType] = {
    "Seniority": PropertyType.STRING,
    "Department": PropertyType.STRING,
    "Industry": PropertyType.STRING,
    "Employees": PropertyType.INTEGER,
    "Employees band": PropertyType.STRING,
    "Annual revenue (USD M)": PropertyType.NUMBER,
    "Country": PropertyType.STRING,
    "Lead Origin": PropertyType.STRING,
    "Newsletter opt-in": PropertyType.BOOLEAN,
}

#: Columns of the benchmark ``leads.csv`` (see :func:`lead_csv_row`).
LEAD_CSV_COLUMNS: tuple[str, ...] = (
    "email", "first_name", "last_name", "job_title", "company", "website", "phone", "source",
    "Seniority", "Industry", "Employees", "Country",
)  # fmt: skip
#: The exact header of the benchmark ``activities.csv`` (see :func:`activity_csv_row`).
ACTIVITY_CSV_COLUMNS: tuple[str, ...] = (
    "email", "type", "occurred_at", "source", "campaign", "content", "idempotency_key",
)  # fmt: skip


# ---- the world: calendars of webinars and trade shows ------------------------------------------------


@dataclass(frozen=True)
class World:
    """What every story shares: the twelve months ending at ``now`` and their event calendars."""

    now: datetime
    start: datetime
    webinars: tuple[tuple[datetime, str], ...]
    trade_shows: tuple[tuple[datetime, str], ...]

    @staticmethod
    def build(now: datetime) -> World:
        now = _utc(now)
        start = now - timedelta(days=365)
        webinars = []
        day = _weekday_on_or_after(start + timedelta(days=24), 1)  # Tuesdays
        k = 0
        while day <= now + timedelta(days=45):
            at = day.replace(hour=16, minute=0, second=0)
            webinars.append((at, WEBINARS[k % len(WEBINARS)]))
            day = _weekday_on_or_after(day + timedelta(days=40), 1 + (k % 2) * 2)  # Tue, then Thu
            k += 1
        shows = []
        for k, days_ago in enumerate((330, 255, 180, 100, 35)):
            at = _weekday_on_or_after(now - timedelta(days=days_ago), 2).replace(hour=10, minute=0, second=0)
            shows.append((at, TRADE_SHOWS[k % len(TRADE_SHOWS)]))
        return World(now=now, start=start, webinars=tuple(webinars), trade_shows=tuple(shows))

    def next_webinar(self, after: datetime) -> tuple[datetime, str]:
        for at, title in self.webinars:
            if at > after:
                return at, title
        return self.webinars[-1]


def _utc(value: datetime) -> datetime:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=0)


def _weekday_on_or_after(day: datetime, weekday: int) -> datetime:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


# ---- people ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Company:
    name: str
    domain: str
    industry: Industry
    employees: int
    band: str
    size_fit: float
    annual_revenue: float  # USD millions
    country: Country
    email_pattern: str
    competitor: bool = False

    @property
    def website(self) -> str:
        return f"https://www.{self.domain}"

    def account(self) -> Account:
        return Account(
            id=None,
            name=self.name,
            domain=self.domain,
            industry=self.industry.name,
            employees=self.employees,
            annual_revenue=round(self.annual_revenue * 1_000_000, 0),
            country=self.country.name,
            properties={"Employees band": self.band},
        )


@dataclass(frozen=True)
class Person:
    """One lead of the demo company, before it is stored: who they are and how likely they buy."""

    index: int
    first_name: str
    last_name: str
    email: str
    phone: str | None
    job_title: str | None
    seniority: str
    department: str | None
    company: Company | None
    company_name: str | None
    country: Country
    source: str
    origin: str
    created_at: datetime
    fit: int  # 0..100, observable: what a fit model could learn from the properties
    propensity: float  # 0..1, hidden: what really drives engagement and outcomes
    newsletter: bool
    bad_email: bool = False

    def properties(self) -> dict[str, PropertyValue]:
        """Typed custom properties (see :data:`LEAD_PROPERTY_TYPES`)."""
        props: dict[str, PropertyValue] = {"Seniority": self.seniority}
        if self.department:
            props["Department"] = self.department
        if self.company is not None:
            props["Industry"] = self.company.industry.name
            props["Employees"] = self.company.employees
            props["Employees band"] = self.company.band
            props["Annual revenue (USD M)"] = self.company.annual_revenue
        props["Country"] = self.country.name
        props["Lead Origin"] = self.origin
        props["Newsletter opt-in"] = self.newsletter
        return props

    def identity(self, normalizer: IdentityNormalizer) -> Identity:
        email = normalizer.email(self.email)
        phone = normalizer.phone(self.phone) if self.phone else None
        return Identity(
            email=self.email,
            email_normalized=email.canonical,
            email_valid=email.valid,
            phone=self.phone,
            phone_e164=phone.e164 if phone else None,
            phone_valid=phone.valid if phone else None,
            first_name=self.first_name,
            last_name=self.last_name,
            job_title=self.job_title,
            company=self.company_name,
        )


def lead_csv_row(person: Person) -> list[str]:
    """The person as a row of the benchmark ``leads.csv`` (:data:`LEAD_CSV_COLUMNS`)."""
    company = person.company
    return [
        person.email,
        person.first_name,
        person.last_name,
        person.job_title or "",
        person.company_name or "",
        company.website if company is not None else "",
        person.phone or "",
        person.source,
        person.seniority,
        company.industry.name if company is not None else "",
        str(company.employees) if company is not None else "",
        person.country.name,
    ]


def _pick(rng: random.Random, items: Sequence[Any], weights: Sequence[float]) -> Any:
    return rng.choices(items, weights)[0]


def _choose(rng: random.Random, items: Sequence[Any], cum_weights: Sequence[float]) -> Any:
    """One item, as ``rng.choices(items, cum_weights=...)[0]`` draws it, without its overhead."""
    return items[bisect(cum_weights, rng.random() * cum_weights[-1], 0, len(items) - 1)]


def _ascii(text: str) -> str:
    text = text.lower()
    for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(src, dst)
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if ch.isascii() and ch.isalnum())


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class _People:
    """Draws companies and the people who come from them; emails are unique by construction."""

    def __init__(self, rng: random.Random, times: random.Random, world: World, count: int) -> None:
        self.rng = rng
        self.times = times  # every draw that depends on ``now`` comes from here, so who people are does not
        self.world = world
        self.count = count
        self.domains: set[str] = set()
        # Free-mail addresses end in a number unique to the person: a bijection of the index.
        self.modulus = 10 ** max(3, len(str(count)) + 1)
        self.offset = rng.randrange(self.modulus)
        self.country_weights = [c.weight for c in COUNTRIES]
        self.industry_weights = [i.weight for i in INDUSTRIES]
        self.band_weights = [b[3] for b in EMPLOYEE_BANDS]
        self.channel_names = [c[0] for c in CHANNELS]
        self.channel_weights = [c[1] for c in CHANNELS]
        self.channel_origin = {c[0]: c[3] for c in CHANNELS}
        self.dept_names = [d[0] for d in _DEPARTMENTS]
        self.dept_weights = [d[1] for d in _DEPARTMENTS]
        self.dept_fit = {d[0]: d[2] for d in _DEPARTMENTS}
        span = (world.now - world.start).total_seconds()
        self.span = span

    def company(self) -> Company:
        rng = self.rng
        country: Country = _pick(rng, COUNTRIES, self.country_weights)
        industry: Industry = _pick(rng, INDUSTRIES, self.industry_weights)
        band = _pick(rng, EMPLOYEE_BANDS, self.band_weights)
        label, low, high, _w, size_fit = band
        employees = round(math.exp(rng.uniform(math.log(low), math.log(high + 1)))) if high > low else low
        employees = max(low, min(high, employees))
        revenue = employees * industry.revenue_per_employee * rng.lognormvariate(0, 0.35) / 1000
        revenue = round(revenue, 1) if revenue >= 1 else round(revenue, 2)
        name = domain = ""
        for attempt in range(12):
            first = rng.choice(_PREFIXES)
            core = rng.choice(industry.cores)
            base = f"{first} {core}"
            if attempt >= 4:
                base = f"{base} {rng.choice(_NAME_TAILS)}"
            if attempt >= 8:
                base = f"{base} {rng.randint(2, 999)}"
            domain = f"{_ascii(base)}.{country.tld}"
            if rng.random() < 0.3:
                domain = f"{'-'.join(_ascii(w) for w in base.split() if _ascii(w))}.{country.tld}"
            name = base
            if domain not in self.domains:
                break
        n = 2
        while domain in self.domains:  # pragma: no cover - after twelve draws, number the domain
            domain = f"{domain.split('.', 1)[0]}{n}.{country.tld}"
            n += 1
        self.domains.add(domain)
        legal = rng.choice(country.legal) if rng.random() < 0.55 else ""
        competitor = industry.name == "Software" and rng.random() < 0.08
        if competitor:
            name = f"{rng.choice(('Freight', 'Cargo', 'Lane', 'Rate'))}{rng.choice(('IQ', 'Metrics', 'Lens', 'Pilot'))}"
            domain = f"{_ascii(name)}{len(self.domains)}.io"
            self.domains.add(domain)
        pattern = _pick(
            rng,
            ("first.last", "flast", "first", "firstl", "first_last"),
            (55, 20, 10 if employees <= 50 else 2, 8, 5),
        )
        return Company(
            name=f"{name} {legal}".strip(),
            domain=domain,
            industry=industry,
            employees=employees,
            band=label,
            size_fit=size_fit,
            annual_revenue=revenue,
            country=country,
            email_pattern=pattern,
            competitor=competitor,
        )

    def created_at(self, source: str) -> datetime:
        rng = self.times
        world = self.world
        if source == "event":
            past = [at for at, _t in world.trade_shows if at < world.now]
            if past:
                show = rng.choice(past)
                return min(world.now, show + timedelta(minutes=rng.randint(0, 1800)))
        # Marketing grew over the year: more leads recently.
        u = rng.random() ** 0.8
        return world.start + timedelta(seconds=int(self.span * u))

    def _local(self, first: str, last: str, pattern: str) -> str:
        f, lname = _ascii(first), _ascii(last)
        if pattern == "first.last":
            return f"{f}.{lname}"
        if pattern == "flast":
            return f"{f[:1]}{lname}"
        if pattern == "first":
            return f
        if pattern == "firstl":
            return f"{f}{lname[:1]}"
        return f"{f}_{lname}"

    def free_mail(self, index: int, first: str, last: str, country: Country) -> str:
        rng = self.rng
        number = (index * 7919 + self.offset) % self.modulus
        pattern = rng.choice(("first.last", "flast", "firstl", "first_last"))
        return f"{self._local(first, last, pattern)}{number}@{rng.choice(country.free_mail)}"

    def phone(self, country: Country) -> str:
        rng = self.rng
        d = rng.randint
        key = country.key
        if key in ("US-E", "US-W", "CA"):
            areas = {
                "US-E": (212, 617, 404, 305, 215, 704, 312, 614),
                "US-W": (415, 206, 310, 503, 512, 303, 602, 702),
                "CA": (416, 604, 514, 403),
            }[key]
            area, exch, line = rng.choice(areas), d(201, 989), d(1000, 9999)
            return rng.choice(
                (f"({area}) {exch}-{line}", f"+1 {area}-{exch}-{line}", f"{area}.{exch}.{line}")
            )
        if key == "UK":
            return f"+44 20 79{d(10, 99)} {d(1000, 9999)}"
        if key == "DE":
            return f"+49 {rng.choice((30, 40, 89, 69))} {d(1000, 9999)}{d(1000, 9999)}"
        if key == "NL":
            return f"+31 20 {d(200, 899)} {d(1000, 9999)}"
        if key == "FR":
            return f"+33 1 {d(40, 79)} {d(10, 99)} {d(10, 99)} {d(10, 99)}"
        if key == "SE":
            return f"+46 8 {d(100, 799)} {d(100, 999)} {d(10, 99)}"
        if key == "ES":
            return f"+34 91 {d(100, 799)} {d(1000, 9999)}"
        if key == "AU":
            return f"+61 2 9{d(100, 999)} {d(1000, 9999)}"
        if key == "IN":
            return f"+91 98{d(100, 999)} {d(10000, 99999)}"
        return f"+55 11 9{d(1000, 9999)} {d(1000, 9999)}"

    def person(
        self,
        index: int,
        company: Company | None,
        locals_used: set[str],
        seniority: str | None = None,
    ) -> Person:
        rng = self.rng
        country = company.country if company is not None else _pick(rng, COUNTRIES, self.country_weights)
        first = rng.choice(_FIRST[country.names])
        last = rng.choice(_LAST[country.names])
        department: str | None = None
        if company is None:
            assert seniority is not None
            title = rng.choice(_STUDENT_TITLES if seniority == "Student" else _SEEKER_TITLES) or None
            email = self.free_mail(index, first, last, country)
            source = _pick(
                rng,
                ("organic_search", "social", "direct", "chat", "paid_social", "event"),
                (40, 20, 12, 12, 10, 6),
            )
        else:
            small = company.employees <= 50
            seniority = _pick(
                rng,
                SENIORITIES[:5],
                (22, 6, 12, 26, 34) if small else (5, 9, 18, 30, 38),
            )
            department = _pick(rng, self.dept_names, self.dept_weights)
            title = self._title(seniority, department)
            if rng.random() < 0.1:
                email = self.free_mail(index, first, last, country)
            else:
                local = self._local(first, last, company.email_pattern)
                n = 2
                candidate = local
                while candidate in locals_used:
                    candidate = f"{local}{n}"
                    n += 1
                locals_used.add(candidate)
                email = f"{candidate}@{company.domain}"
            source = _pick(rng, self.channel_names, self.channel_weights)
        created = self.created_at(source)
        created = _business_time(self.times, created, country.tz, 0.8)
        created = min(created, self.world.now - timedelta(minutes=self.times.randint(5, 600)))
        phone = (
            self.phone(country) if rng.random() < (0.75 if source in ("call_in", "event") else 0.4) else None
        )
        seniority_fit = _SENIORITY_FIT[seniority]
        if company is not None:
            dept_fit = self.dept_fit[department or ""]
            fit_raw = (
                0.35 * seniority_fit + 0.25 * company.size_fit + 0.25 * company.industry.fit + 0.15 * dept_fit
            ) * (0.85 + 0.15 * country.icp)
            if company.competitor:
                fit_raw *= 0.5
        else:
            fit_raw = 0.05 * country.icp
        fit = round(100 * fit_raw)
        quality = _CHANNEL_QUALITY.get(source, 0.5)
        propensity = _sigmoid(6.5 * (fit_raw - 0.7) + 1.5 * (quality - 0.5) + rng.gauss(0, 0.7))
        return Person(
            index=index,
            first_name=first,
            last_name=last,
            email=email,
            phone=phone,
            job_title=title,
            seniority=seniority,
            department=department,
            company=company,
            company_name=company.name if company is not None else None,
            country=country,
            source=source,
            origin=self.channel_origin.get(source, "Landing Page Submission"),
            created_at=created,
            fit=fit,
            propensity=propensity,
            newsletter=rng.random() < 0.25 + 0.3 * propensity,
            bad_email=rng.random() < 0.015,
        )

    def _title(self, seniority: str, department: str) -> str:
        rng = self.rng
        if seniority == "C-level":
            return rng.choice(_C_TITLES[department])
        if seniority == "VP":
            return rng.choice((f"VP {department}", f"Vice President, {department}", f"SVP {department}"))
        if seniority == "Director":
            return rng.choice(
                (f"Director of {department}", f"Head of {department}", f"{department} Director")
            )
        if seniority == "Manager":
            return rng.choice(_MANAGER_TITLES[department])
        return rng.choice(_IC_TITLES[department])


def demo_randoms(seed: int) -> tuple[random.Random, random.Random]:
    """Two streams from one seed: who the people are, and when things happen to them.

    Keeping them apart means a seed gives the same people and companies whatever ``now`` is, so
    running the demo again on a later day recognises everyone instead of inventing a second company.
    """
    return random.Random(seed), random.Random(f"leadstage-demo:{seed}:stories")


def iter_people(
    rng: random.Random, world: World, count: int, *, times: random.Random | None = None
) -> Iterator[Person]:
    """``count`` people, company by company (a few students and job seekers in between).

    ``rng`` draws who they are; ``times`` (default: ``rng``) draws when they arrived.
    """
    people = _People(rng, times or rng, world, count)
    index = 0
    while index < count:
        if rng.random() < 0.06:
            seniority = "Student" if rng.random() < 0.55 else "Job seeker"
            yield people.person(index, None, set(), seniority)
            index += 1
            continue
        company = people.company()
        size = company.employees
        mean = 1.2 if size <= 10 else 1.8 if size <= 200 else 2.8 if size <= 1000 else 4.0
        n = 1 + min(12, int(rng.expovariate(1 / mean)))
        locals_used: set[str] = set()
        for _ in range(n):
            if index >= count:
                return
            yield people.person(index, company, locals_used)
            index += 1


# ---- activities --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoActivity:
    type: str
    at: datetime
    source: str | None = None
    campaign: str | None = None
    content: str | None = None
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)

    def properties_json(self) -> str | None:
        if not self.properties:
            return None
        return json.dumps(dict(self.properties), separators=(",", ":"), ensure_ascii=False)


def activity_csv_row(person: Person, activity: DemoActivity, key: str) -> list[str]:
    """The activity as a row of the benchmark ``activities.csv`` (:data:`ACTIVITY_CSV_COLUMNS`)."""
    return [
        person.email,
        activity.type,
        activity.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        activity.source or "",
        activity.campaign or "",
        activity.content or "",
        key,
    ]


def _business_time(rng: random.Random, at: datetime, tz: float, bias: float) -> datetime:
    """Move a moment into local working hours on a weekday, with probability ``bias``."""
    if rng.random() >= bias:
        return at
    offset = timedelta(hours=tz)
    local = at + offset
    if local.hour >= 18:
        local += timedelta(days=1)
    if local.hour < 8 or local.hour >= 18 or local.weekday() >= 5:
        start_of_day = local.replace(hour=8, minute=0, second=0)
        local = start_of_day + timedelta(seconds=int(rng.random() * 36_000))
    if local.weekday() >= 5:
        local += timedelta(days=7 - local.weekday())
    return local - offset


def _at(activity: DemoActivity) -> datetime:
    return activity.at


def _quarter(at: datetime) -> str:
    return f"{at.year}-Q{(at.month - 1) // 3 + 1}"


def _campaign(rng: random.Random, source: str, at: datetime) -> str | None:
    q = _quarter(at)
    if source == "paid_search":
        return f"{q} Paid Search {rng.choice(('Brand', 'Brand', 'Freight Analytics', 'Competitor Terms'))}"
    if source == "paid_social":
        return f"{q} Paid Social {rng.choice(('LinkedIn CFO Audience', 'LinkedIn Logistics Leaders', 'Retargeting'))}"
    if source == "email":
        return rng.choice((f"{at.year}-{at.month:02d} Newsletter", f"{q} Nurture Freight Cost Series"))
    if source == "social":
        return f"{q} Organic Social" if rng.random() < 0.5 else None
    if source == "partner":
        return f"{q} Partner Co-marketing {rng.choice(('ShipBridge', 'LedgerLoop', 'PortCall'))}"
    if source == "referral":
        return "Customer Referral Program"
    return None


class _Activities:
    """Draws marketing activities for a person: type, time, channel, campaign and content."""

    TYPES: tuple[str, ...] = (
        "page_view",
        "email_open",
        "email_click",
        "content_download",
        "webinar_registered",
        "ad_click",
        "social_engagement",
        "form_submit",
        "chat",
        "free_trial",
        "unsubscribe",
    )

    def __init__(self, rng: random.Random, world: World, person: Person) -> None:
        self.rng = rng
        self.world = world
        self.person = person
        p = person.propensity
        weights = (
            40.0,
            22.0 if person.newsletter else 10.0,
            4.0 + 8 * p,
            4.0 + 8 * p,
            2.0 + 6 * p,
            4.0 + (8 if person.source in ("paid_search", "paid_social") else 0),
            4.0 if person.source in ("social", "paid_social") else 1.5,
            1.0 + 4 * p,
            0.5 + 2 * p,
            0.2 + 1.5 * p * p,
            0.2 * (1 - p),
        )
        self.page_names = [pg for pg, _w in PAGES] + ["/pricing", "/demo", "/careers"]
        student = person.seniority in ("Student", "Job seeker")
        page_weights = [w for _pg, w in PAGES] + [2 + 14 * p, 0.5 + 6 * p, 10.0 if student else 0.6]
        # Cumulative weights, computed once: the same draws as ``weights=`` at a fraction of the cost.
        self.type_cum = list(accumulate(weights))
        self.registered: set[str] = set()
        self.view_sources = ("organic_search", "direct", "paid_search", "email", "social", person.source)
        self.view_cum = list(accumulate((30, 25, 8, 8, 5, 24)))
        self.page_cum = list(accumulate(page_weights))

    def one(self, type_: str, at: datetime) -> list[DemoActivity]:
        rng = self.rng
        person = self.person
        p = person.propensity
        if type_ == "page_view":
            source = _choose(rng, self.view_sources, self.view_cum)
            page = _choose(rng, self.page_names, self.page_cum)
            campaign = _campaign(rng, source, at) if source in ("paid_search", "email") else None
            return [DemoActivity("page_view", at, source, campaign, None, {"page": page})]
        if type_ in ("email_open", "email_click"):
            props: dict[str, PropertyValue] = {"email": rng.choice(_EMAILS)}
            campaign = _campaign(rng, "email", at)
            out = [DemoActivity("email_open", at, "email", campaign, None, props)]
            if type_ == "email_click":
                content = rng.choice(EBOOKS + WEBINARS + CASE_STUDIES) if rng.random() < 0.6 else None
                out.append(
                    DemoActivity(
                        "email_click",
                        at + timedelta(seconds=rng.randint(5, 600)),
                        "email",
                        campaign,
                        content,
                        props,
                    )
                )
            return out
        if type_ == "content_download":
            source = _pick(
                rng, ("organic_search", "paid_social", "email", "social", "partner"), (35, 25, 25, 10, 5)
            )
            # Finance leaders favour the CFO playbook; the report draws the widest (and weakest) crowd.
            finance = person.department == "Finance" or person.seniority in ("C-level", "VP")
            weights = (6 + 20 * p if finance else 3, 8, 3 + 8 * p, 12 - 6 * p, 3)
            content = _pick(rng, (*EBOOKS, rng.choice(CASE_STUDIES)), weights)
            return [
                DemoActivity(
                    "content_download", at, source, _campaign(rng, source, at), content, {"format": "PDF"}
                )
            ]
        if type_ == "webinar_registered":
            when, title = self.world.next_webinar(at)
            if title in self.registered:
                return []  # one registration per person and webinar
            self.registered.add(title)
            source = _pick(rng, ("email", "paid_social", "social", "organic_search"), (50, 25, 15, 10))
            campaign = f"{_quarter(when)} Webinar Program"
            out = [DemoActivity("webinar_registered", at, source, campaign, title)]
            if when > at and rng.random() < 0.3 + 0.5 * p:
                minutes = rng.randint(20, 60)
                out.append(
                    DemoActivity(
                        "webinar_attended",
                        when + timedelta(minutes=rng.randint(0, 5)),
                        source,
                        campaign,
                        title,
                        {"minutes": minutes},
                    )
                )
            return out
        if type_ == "ad_click":
            source = (
                "paid_search" if person.source != "paid_social" and rng.random() < 0.65 else "paid_social"
            )
            return [
                DemoActivity(
                    "ad_click",
                    at,
                    source,
                    _campaign(rng, source, at),
                    None,
                    {"landing_page": rng.choice(("/", "/product", "/pricing", "/resources"))},
                )
            ]
        if type_ == "social_engagement":
            return [
                DemoActivity(
                    "social_engagement",
                    at,
                    "social",
                    _campaign(rng, "social", at),
                    None,
                    {"network": rng.choice(("LinkedIn", "LinkedIn", "X", "YouTube"))},
                )
            ]
        if type_ == "form_submit":
            form = _pick(
                rng,
                ("Contact us", "Pricing request", "Demo request", "Newsletter signup"),
                (3, 2 + 4 * p, 1 + 4 * p, 3),
            )
            source = _pick(rng, ("organic_search", "direct", "paid_search", person.source), (35, 25, 15, 25))
            return [DemoActivity("form_submit", at, source, _campaign(rng, source, at), None, {"form": form})]
        if type_ == "chat":
            topics = ("pricing", "integrations", "security", "onboarding", "careers" if p < 0.1 else "demo")
            return [DemoActivity("chat", at, "chat", None, None, {"topic": rng.choice(topics)})]
        if type_ == "free_trial":
            return [DemoActivity("free_trial", at, "direct", None, None, {"plan": "Team", "days": 14})]
        if type_ == "unsubscribe":
            email = {"email": rng.choice(_EMAILS)}
            return [DemoActivity("unsubscribe", at, "email", _campaign(rng, "email", at), None, email)]
        raise ValueError(type_)  # pragma: no cover

    def origin(self) -> list[DemoActivity]:
        """What the person did when they became a lead (at ``created_at``)."""
        rng = self.rng
        person = self.person
        at = person.created_at
        source = person.source
        later = at + timedelta(minutes=rng.randint(2, 9))
        if source == "event":
            show = min(self.world.trade_shows, key=lambda s: abs((s[0] - at).total_seconds()))
            show_name = f"{show[0].year} {show[1]}"
            return [DemoActivity("event_attended", at, "event", show_name, None, {"booth_scan": True})]
        if source in ("paid_search", "paid_social"):
            campaign = _campaign(rng, source, at)
            form = "LinkedIn Lead Gen Form" if source == "paid_social" else "Pricing request"
            content = rng.choice(EBOOKS) if source == "paid_social" else None
            return [
                DemoActivity(
                    "ad_click", at, source, campaign, content, {"landing_page": "/lp/freight-costs"}
                ),
                DemoActivity("form_submit", later, source, campaign, content, {"form": form}),
            ]
        if source == "chat":
            return [
                DemoActivity(
                    "chat", at, "chat", None, None, {"topic": rng.choice(("pricing", "demo", "integrations"))}
                )
            ]
        if source == "call_in":
            return [DemoActivity("form_submit", at, "call_in", None, None, {"form": "Inbound call log"})]
        if source == "email":
            signup = _campaign(rng, "email", at)
            return [DemoActivity("form_submit", at, "email", signup, None, {"form": "Newsletter signup"})]
        if source == "organic_search" and rng.random() < 0.5:
            content = _pick(rng, EBOOKS, (3, 4, 2, 5))
            return [
                DemoActivity("page_view", at, source, None, None, {"page": "/resources"}),
                DemoActivity("content_download", later, source, None, content, {"format": "PDF"}),
            ]
        form = {"referral": "Referral form", "partner": "Partner lead"}.get(source, "Contact us")
        return [
            DemoActivity("page_view", at, source, None, None, {"page": "/"}),
            DemoActivity("form_submit", later, source, _campaign(rng, source, at), None, {"form": form}),
        ]

    def burst(
        self, anchor: datetime, count: int, mean_days: float, end: datetime | None = None
    ) -> list[DemoActivity]:
        """``count`` activities after ``anchor``, spaced so that they thin out (an exponential decay)."""
        rng = self.rng
        person = self.person
        limit = min(end or self.world.now, self.world.now)
        out: list[DemoActivity] = []
        for _ in range(count):
            at = anchor + timedelta(seconds=int(rng.expovariate(1.0 / mean_days) * 86400) + 60)
            type_ = _choose(rng, self.TYPES, self.type_cum)
            at = _business_time(rng, at, person.country.tz, 0.55 if type_.startswith("email") else 0.8)
            if at <= anchor or at > limit:
                continue
            out.extend(a for a in self.one(type_, at) if a.at <= self.world.now)
        return out

    def scattered(self, count: int) -> Iterator[DemoActivity]:
        """``count`` more activities anywhere in the person's life (stretches benchmark files)."""
        rng = self.rng
        start = self.person.created_at
        span = max(60.0, (self.world.now - start).total_seconds())
        made = 0
        while made < count:
            at = start + timedelta(seconds=int(span * rng.random() ** 1.5) + 1)
            type_ = _choose(rng, self.TYPES, self.type_cum)
            for activity in self.one(type_, min(at, self.world.now)):
                if made < count:
                    yield replace(activity, at=min(activity.at, self.world.now))
                    made += 1


# ---- the story of one lead ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BantAnswer:
    cycle: int
    criterion: str
    confirmed: bool
    value: Mapping[str, Any]
    evidence: str
    recorded_by: str
    at: datetime


@dataclass
class Journey:
    """Everything that happened to one person: activities in time order, history, BANT answers."""

    state: LeadState
    history: list[HistoryEntry]
    activities: list[DemoActivity]
    bant: list[BantAnswer]
    owner: Actor | None

    @property
    def updated_at(self) -> datetime:
        return self.history[-1].at


_REJECT_NOTES: Mapping[str, str] = {
    "not_icp": "Company is outside our ICP (industry or size); not a fit for the platform.",
    "no_need": "Happy with their current spreadsheet process; no pain we can solve today.",
    "bad_timing": "Mid-way through an ERP migration; asked us to come back next fiscal year.",
    "no_budget": "No budget for new tooling this fiscal year.",
    "not_decision_maker": "Contact has no say in tooling; could not get an intro to the budget owner.",
    "student_or_job_seeker": "Free-mail address and visits to /careers: a student or job seeker, not a buyer.",
    "competitor": "Works at a competitor; researching our pricing and features.",
    "invalid_contact": "Email hard-bounced and no working phone number.",
    "duplicate": "Duplicate of a contact already worked at the same account.",
    "unresponsive": "No reply after six touches over three weeks.",
    "other": "Other: see the call notes.",
}
_LOSS_NOTES: Mapping[str, str] = {
    "price": "Chose a cheaper option; our quote was 30% above their budget.",
    "competitor": "Went with a competitor that their 3PL already uses.",
    "no_decision": "The project stalled; no decision this year.",
    "no_budget": "Budget was cut in the last quarterly review.",
    "bad_timing": "Reorganisation put all new projects on hold.",
    "product_fit": "Needed ocean-freight tendering, which we do not offer.",
    "unresponsive": "Champion left the company; no response since.",
    "other": "Other: see the opportunity notes.",
}
_PAINS = (
    "freight costs forecast by hand in spreadsheets",
    "no visibility of carrier performance",
    "surprise surcharges blow the logistics budget",
    "landed cost unknown at quote time",
    "month-end freight accruals take a week",
)


class _Story:
    """Simulates one lead through the funnel; every stage change goes through ``plan_transition``."""

    MAX_STEPS = 40

    def __init__(self, rng: random.Random, world: World, person: Person, team: Team, volume: float) -> None:
        self.rng = rng
        self.world = world
        self.now = world.now
        self.person = person
        self.team = team
        self.volume = volume
        self.p = person.propensity
        self.draw = _Activities(rng, world, person)
        creator = team.marketing.name if person.source in ("event", "partner") else "system"
        self.state = initial_state()
        self.history: list[HistoryEntry] = [
            creation_entry(actor=creator, at=person.created_at, source=person.source)
        ]
        self.activities: list[DemoActivity] = []
        self._unsorted: list[DemoActivity] = []
        self.bant: list[BantAnswer] = []
        self.cursor = person.created_at
        self.owner: Actor | None = None
        self.last_reason: str | None = None
        self.rep = team.reps.get(person.country.territory) or next(iter(team.reps.values()))

    # -- helpers --

    def _add(self, activities: Sequence[DemoActivity]) -> None:
        self._unsorted.extend(a for a in activities if a.at <= self.now)

    def _timeline(self) -> list[DemoActivity]:
        """The activities so far, in time order."""
        if self._unsorted:
            self.activities.extend(self._unsorted)
            self._unsorted.clear()
            self.activities.sort(key=_at)
        return self.activities

    def _later(self, at: datetime, days: float, *, bias: float = 0.9) -> datetime:
        """A working moment about ``days`` after ``at`` (never before it)."""
        moment = at + timedelta(seconds=max(60, int(days * 86400)))
        moment = _business_time(self.rng, moment, self.person.country.tz, bias)
        return max(moment, at + timedelta(minutes=1))

    def _step(
        self,
        request: TransitionRequest,
        actor: Actor,
        at: datetime,
        qualification: QualificationCheck | None = None,
    ) -> bool:
        """Take one action of the table at ``at`` (moved after the last one); False when it is in the future."""
        if at <= self.cursor:
            at = self.cursor + timedelta(minutes=self.rng.randint(1, 30))
        if at > self.now:
            return False
        outcome = plan_transition(self.state, request, actor=actor, at=at, qualification=qualification)
        self.state = outcome.state
        self.history.append(outcome.entry)
        self.cursor = at
        return True

    def _sales(self, type_: str, at: datetime, actor: Actor, **props: PropertyValue) -> bool:
        if at > self.now:
            return False
        self._add([DemoActivity(type_, at, None, None, None, {"by": actor.name, **props})])
        return True

    def _engagement_count(self, base: float, scale: float) -> int:
        mean = self.volume * (base + scale * self.p**1.3)
        return max(0, round(self.rng.lognormvariate(math.log(max(mean, 0.1)), 0.5)))

    def _sales_actor(self) -> Actor:
        if self.owner is not None:
            return self.owner
        return self.team.manager if self.rng.random() < 0.1 else self.rep

    # -- the story --

    def run(self) -> Journey:
        person = self.person
        draw = self.draw
        self._add(draw.origin())
        if person.bad_email:
            bounce_at = self._later(person.created_at, self.rng.uniform(1, 20), bias=0.5)
            self._add(
                [DemoActivity("email_bounce", bounce_at, "email", _campaign(self.rng, "email", bounce_at))]
            )
        else:
            first = self._engagement_count(2.0, 14.0)
            self._add(draw.burst(person.created_at, first, 4.0 + 6 * (1 - self.p)))
            months = (self.now - person.created_at).days / 30.0
            for _ in range(self._poisson(months * (0.15 + 0.45 * self.p))):
                anchor = person.created_at + timedelta(days=self.rng.uniform(7, max(8.0, months * 30)))
                self._add(draw.burst(anchor, self._engagement_count(1.0, 6.0), 3.0))
        steps = 0
        while steps < self.MAX_STEPS:
            steps += 1
            stage, status = self.state.stage, self.state.status
            if status is Status.DISQUALIFIED:
                going = self._maybe_reopen()
            elif stage is Stage.LEAD:
                going = self._lead()
            elif stage is Stage.MQL and status is Status.OPEN:
                going = self._review()
            elif stage is Stage.MQL:
                going = self._discovery()
            elif stage is Stage.SQL:
                going = self._sql()
            elif stage is Stage.OPPORTUNITY:
                going = self._opportunity()
            elif stage is Stage.CUSTOMER:
                self._customer()
                going = False
            else:
                going = False
            if not going:
                break
        self._after_unsubscribe()
        return Journey(
            state=self.state,
            history=self.history,
            activities=self._timeline(),
            bant=self.bant,
            owner=self.owner,
        )

    def _poisson(self, mean: float) -> int:
        rng = self.rng
        limit, k, prod = math.exp(-min(mean, 30.0)), 0, rng.random()
        while prod > limit:
            k += 1
            prod *= rng.random()
        return k

    def _after_unsubscribe(self) -> None:
        gone = next((a.at for a in self._timeline() if a.type == "unsubscribe"), None)
        if gone is not None:
            self.activities = [
                a for a in self.activities if not (a.at > gone and a.type in ("email_open", "email_click"))
            ]

    def _disqualify(self, actor: Actor, reason: str, at: datetime, note: str | None = None) -> bool:
        self.last_reason = reason
        return self._step(
            TransitionRequest("disqualify", reason=reason, note=note or _REJECT_NOTES[reason]), actor, at
        )

    def _lead(self) -> bool:
        """Stage lead (open or nurture): marketing screens, the MQL rule promotes, or nothing happens."""
        person, rng = self.person, self.rng
        marketing = self.team.marketing
        first_cycle = self.state.cycle == 1 and self.state.status is Status.OPEN and len(self.history) == 1
        if first_cycle:
            if person.seniority in ("Student", "Job seeker") and rng.random() < 0.7:
                return self._disqualify(
                    marketing, "student_or_job_seeker", self._later(person.created_at, rng.uniform(1, 12))
                )
            if person.company is not None and person.company.competitor and rng.random() < 0.85:
                return self._disqualify(
                    marketing, "competitor", self._later(person.created_at, rng.uniform(0.5, 5))
                )
            if person.bad_email:
                bounce = next((a.at for a in self._timeline() if a.type == "email_bounce"), person.created_at)
                return self._disqualify(
                    marketing, "invalid_contact", self._later(bounce, rng.uniform(0.2, 3))
                )
            if person.source in ("event", "call_in", "referral") and person.fit >= 55 and rng.random() < 0.35:
                note = {
                    "event": "Met at our booth; asked for pricing and a demo.",
                    "call_in": "Called in asking for a quote; clear project this quarter.",
                    "referral": "Referred by a customer who vouches for the need.",
                }[person.source]
                at = self._later(person.created_at, rng.uniform(0.05, 2))
                return self._step(TransitionRequest("promote_mql", reason="manual", note=note), marketing, at)
        after = self.cursor + (timedelta(days=14) if self.state.status is Status.NURTURE else timedelta(0))
        moment = self._mql_moment(after)
        if moment is None:
            return False
        at, points = moment
        criteria = [
            f"fit {person.fit} >= {MQL_FIT}"
            if person.fit >= MQL_FIT
            else f"engagement {points} >= {MQL_POINTS_ALONE}"
        ]
        criteria.append(f"engagement {points} >= {MQL_POINTS} in 30 days")
        return self._step(
            TransitionRequest("promote_mql", criteria=criteria),
            self.team.system,
            at + timedelta(minutes=rng.randint(1, 15)),
        )

    def _mql_moment(self, after: datetime) -> tuple[datetime, int] | None:
        """When the MQL rule first holds after ``after``: fit and 30-day engagement, or engagement alone."""
        window: deque[tuple[datetime, int]] = deque()
        total = 0
        fit_ok = self.person.fit >= MQL_FIT
        for a in self._timeline():
            if a.at <= after:
                continue
            if a.type == "page_view":
                points = _PAGE_POINTS.get(str(a.properties.get("page")), ACTIVITY_POINTS["page_view"])
            else:
                points = ACTIVITY_POINTS.get(a.type, 0)
            if not points:
                continue
            window.append((a.at, points))
            total += points
            while window and window[0][0] <= a.at - MQL_WINDOW:
                total -= window.popleft()[1]
            if (fit_ok and total >= MQL_POINTS) or total >= MQL_POINTS_ALONE:
                return a.at, total
        return None

    def _nurture_burst(self) -> None:
        count = self._engagement_count(1.5, 10.0)
        self._add(self.draw.burst(self.cursor + timedelta(days=7), count, 25.0))

    def _review(self) -> bool:
        """MQL/open: sales responds, then accepts it as a prospect or sends it back with a reason."""
        person, rng, p = self.person, self.rng, self.p
        actor = self._sales_actor()
        hours = rng.lognormvariate(math.log(3.0 if person.fit >= 60 else 9.0), 0.9)
        at = self._later(self.cursor, hours / 24)
        if at > self.now:
            return False
        self._sales("email_sent" if rng.random() < 0.6 else "call", at, actor, step="first response")
        student = person.seniority in ("Student", "Job seeker")
        if not student and rng.random() < 0.3 + 0.65 * p:
            if not self._step(TransitionRequest("accept"), actor, at + timedelta(minutes=rng.randint(2, 40))):
                return False
            rep = self.owner or self.rep
            self.owner = rep
            self.state = replace(self.state, owner_id=rep.user_id, owner_team=rep.team)
            return True
        reason = self._rejection_reason()
        at += timedelta(minutes=rng.randint(5, 90))
        if reason in ("student_or_job_seeker", "competitor", "duplicate", "not_icp") and rng.random() < 0.5:
            return self._disqualify(actor, reason, at)
        note = _REJECT_NOTES[reason] if rng.random() < 0.5 or reason == "other" else None
        self.last_reason = reason
        if not self._step(TransitionRequest("reject", reason=reason, note=note), actor, at):
            return False
        self._nurture_burst()
        return True

    def _rejection_reason(self) -> str:
        person = self.person
        if person.seniority in ("Student", "Job seeker"):
            return "student_or_job_seeker"
        if person.company is not None and person.company.competitor:
            return "competitor"
        small = person.company is not None and person.company.employees <= 50
        weights = {
            "not_icp": 6 + 20 * (1 - person.fit / 100),
            "no_need": 8,
            "bad_timing": 10,
            "no_budget": 12 if small else 4,
            "not_decision_maker": 14 if person.seniority in ("Individual contributor", "Manager") else 2,
            "unresponsive": 8,
            "duplicate": 1.5,
            "other": 1,
        }
        return str(_pick(self.rng, list(weights), list(weights.values())))

    def _discovery(self) -> bool:
        """MQL/working (a prospect): reach them, hold a discovery call, record BANT, qualify or not."""
        rng, p = self.rng, self.p
        rep = self.owner or self.rep
        at = self.cursor
        connected = None
        for attempt in range(rng.randint(3, 6)):
            at = self._later(at, rng.uniform(0.5, 3) if attempt else rng.uniform(0.01, 0.3))
            if at > self.now:
                return False
            connects = rng.random() < 0.35 + 0.45 * p
            self._sales(
                "call" if attempt % 2 == 0 else "email_sent", at, rep, attempt=attempt + 1, connected=connects
            )
            if connects:
                connected = at
                break
        if connected is None:
            at = self._later(at, rng.uniform(3, 8))
            self.last_reason = "unresponsive"
            if rng.random() < 0.7:
                if not self._step(TransitionRequest("reject", reason="unresponsive"), rep, at):
                    return False
                self._nurture_burst()
                return True
            return self._disqualify(rep, "unresponsive", at)
        meeting = self._later(connected, rng.uniform(1, 8))
        if not self._sales("meeting", meeting, rep, kind="discovery", minutes=rng.choice((30, 45, 60))):
            return False
        answered = meeting + timedelta(minutes=rng.randint(30, 120))
        if answered + timedelta(minutes=5) > self.now:
            return False
        confirmed = self._record_bant(answered, rep, p)
        check = evaluate(confirmed)
        if not check.passed and check.missing == ("authority",) and rng.random() < 0.55:
            second = self._later(meeting, rng.uniform(3, 12))
            if second + timedelta(minutes=55) > self.now:
                return False
            self._sales("meeting", second, rep, kind="economic buyer", minutes=45)
            self._answer("authority", True, second + timedelta(minutes=50), rep)
            confirmed["authority"] = True
            check = evaluate(confirmed)
        last = max(b.at for b in self.bant)
        if check.passed:
            at = self._later(last, rng.uniform(0.05, 2))
            return self._step(TransitionRequest("qualify_sql"), rep, at, qualification=check)
        missing = check.missing[0]
        reason = {
            "budget": "no_budget",
            "authority": "not_decision_maker",
            "need": "no_need",
            "timeline": "bad_timing",
        }[missing]
        at = self._later(last, rng.uniform(0.1, 3))
        roll = rng.random()
        if roll < 0.25:
            return self._disqualify(rep, reason, at)
        if roll < 0.85:
            self.last_reason = reason
            note = _REJECT_NOTES[reason] if rng.random() < 0.6 else None
            if not self._step(TransitionRequest("reject", reason=reason, note=note), rep, at):
                return False
            self._nurture_burst()
            return True
        return False  # the rep keeps working it (still a prospect)

    def _answer(self, criterion: str, confirmed: bool, at: datetime, rep: Actor) -> None:
        rng, person = self.rng, self.person
        company = person.company
        currency = person.country.currency
        if criterion == "budget":
            size = company.employees if company is not None else 10
            amount = round(rng.lognormvariate(math.log(9000 * (size / 150) ** 0.4 + 3000), 0.4), -3)
            value: dict[str, Any] = {"amount": amount, "currency": currency, "approved": confirmed}
        elif criterion == "authority":
            value = {
                "contact_role": "economic buyer"
                if confirmed
                else rng.choice(("influencer", "user", "champion"))
            }
        elif criterion == "need":
            value = {"pain": rng.choice(_PAINS)}
        else:
            value = {"decision_by": (at + timedelta(days=rng.randint(20, 150))).date().isoformat()}
        self.bant.append(
            BantAnswer(
                cycle=self.state.cycle,
                criterion=criterion,
                confirmed=confirmed,
                value=value,
                evidence=f"Discovery call on {at.date().isoformat()}",
                recorded_by=rep.name,
                at=at,
            )
        )

    def _record_bant(self, at: datetime, rep: Actor, p: float) -> dict[str, bool]:
        rng, person = self.rng, self.person
        employees = person.company.employees if person.company is not None else 1
        chances = {
            "budget": 0.25 + 0.6 * p + (0.1 if employees > 200 else 0),
            "authority": _AUTHORITY[person.seniority] * (0.6 + 0.4 * p),
            "need": 0.4 + 0.55 * p,
            "timeline": 0.35 + 0.55 * p,
        }
        confirmed: dict[str, bool] = {}
        for k, criterion in enumerate(BANT):
            ok = rng.random() < chances[criterion]
            confirmed[criterion] = ok
            self._answer(criterion, ok, at + timedelta(minutes=k), rep)
        return confirmed

    def _sql(self) -> bool:
        """SQL: a demo (maybe a free trial), then an opportunity, or recycled back to nurture."""
        rng, p = self.rng, self.p
        rep = self.owner or self.rep
        demo_at = self._later(self.cursor, rng.uniform(1, 9))
        if demo_at > self.now:
            return False
        self._add(
            [DemoActivity("demo", demo_at, "direct", None, None, {"by": rep.name, "kind": "product demo"})]
        )
        last = demo_at
        if rng.random() < 0.35 + 0.35 * p:
            trial = self._later(demo_at, rng.uniform(0.5, 4), bias=0.6)
            if trial <= self.now:
                self._add(
                    [DemoActivity("free_trial", trial, "direct", None, None, {"plan": "Team", "days": 14})]
                )
                last = trial
        at = self._later(last, rng.uniform(2, 15))
        if rng.random() < 0.65 + 0.3 * p:
            company = self.person.company
            size = company.employees if company is not None else 10
            amount = round(rng.lognormvariate(math.log(12000 * (size / 200) ** 0.45 + 4000), 0.35), -2)
            amount = max(3000, min(400000, amount))
            close = (at + timedelta(days=rng.randint(30, 100))).date()
            request = TransitionRequest(
                "open_opportunity",
                amount=str(int(amount)),
                currency=self.person.country.currency,
                close_date=close,
            )
            return self._step(request, rep, at)
        reason = _pick(rng, ("bad_timing", "no_budget", "no_need", "unresponsive"), (4, 3, 2, 2))
        self.last_reason = reason
        if not self._step(TransitionRequest("recycle", reason=reason, note=_REJECT_NOTES[reason]), rep, at):
            return False
        self._nurture_burst()
        return True

    def _opportunity(self) -> bool:
        """Opportunity: meetings, then won, lost (a reason), recycled or disqualified at about the close date."""
        rng, p = self.rng, self.p
        rep = self.owner or self.rep
        data = self.history[-1].data
        amount = float(data.get("amount", 10000))
        expected = date.fromisoformat(str(data.get("expected_close")))
        slip = max(-20.0, rng.gauss(10, 20))
        close_at = datetime(expected.year, expected.month, expected.day, 15, tzinfo=UTC) + timedelta(
            days=slip
        )
        close_at = self._later(max(close_at, self.cursor + timedelta(days=3)), 0.01)
        span = (close_at - self.cursor).total_seconds() / 86400
        for k in sorted(rng.uniform(0.1, 0.9) for _ in range(rng.randint(1, 3))):
            at = self._later(self.cursor, span * k)
            if at < close_at:
                kind = rng.choice(("proposal", "negotiation", "security review"))
                self._sales("meeting", at, rep, kind=kind)
        if close_at > self.now:
            return False
        roll = rng.random()
        win_p = 0.08 + 0.5 * p
        if roll < win_p:
            closed = round(amount * rng.uniform(0.8, 1.05), -2)
            request = TransitionRequest(
                "win",
                amount=str(int(closed)),
                currency=self.person.country.currency,
                close_date=close_at.date(),
            )
            return self._step(request, rep, close_at)
        roll = rng.random()
        if roll < 0.8:
            reason = _pick(
                rng,
                LOSS_REASONS,  # price, competitor, no_decision, no_budget, bad_timing, product_fit, ...
                (6, 5, 5, 3, 3, 2, 2, 0.5),
            )
            note = _LOSS_NOTES[reason] if rng.random() < 0.7 or reason == "other" else None
            self.last_reason = reason
            if not self._step(TransitionRequest("lose", reason=reason, note=note), rep, close_at):
                return False
        elif roll < 0.95:
            self.last_reason = "bad_timing"
            if not self._step(
                TransitionRequest("recycle", reason="bad_timing", note="Pushed to next year."), rep, close_at
            ):
                return False
        else:
            return self._disqualify(
                rep, "no_budget", close_at, "Budget frozen company-wide; no purchase possible."
            )
        self._nurture_burst()
        return True

    def _customer(self) -> None:
        """Customer: an NPS answer, and for some an advocacy activity followed by ``advocate``."""
        rng, p = self.rng, self.p
        if rng.random() < 0.6:
            at = self._later(self.cursor, rng.uniform(60, 120), bias=0.6)
            score = max(0, min(10, round(rng.gauss(6.5 + 3 * p, 1.5))))
            if at <= self.now:
                self._add([DemoActivity("nps_response", at, "email", None, None, {"score": score})])
        if rng.random() >= 0.15 + 0.5 * p:
            return
        kind = _pick(rng, ("referral_made", "review", "case_study"), (4, 4, 2))
        at = self._later(self.cursor, rng.uniform(20, 200))
        if at > self.now:
            return
        props: dict[str, PropertyValue]
        if kind == "referral_made":
            props = {"referred": "a peer at another shipper"}
        elif kind == "review":
            props = {"site": rng.choice(("G2", "Capterra", "TrustRadius")), "stars": rng.choice((4, 5, 5))}
        else:
            props = {"title": rng.choice(CASE_STUDIES)}
        source = "referral" if kind == "referral_made" else None
        self._add(
            [DemoActivity(kind, at, source, "Customer Referral Program" if source else None, None, props)]
        )
        later = at + timedelta(minutes=rng.randint(60, 1800))
        if rng.random() < 0.7:
            self._step(TransitionRequest("advocate", advocacy_activity=kind), self.team.system, later)
        else:
            note = "Spoke about us at a customer panel; happy to take reference calls."
            self._step(
                TransitionRequest("advocate", advocacy_activity=kind, note=note), self.team.marketing, later
            )

    def _maybe_reopen(self) -> bool:
        """Disqualified: some come back (a re-check, changed fit, or they resurface) for a new cycle."""
        rng, p = self.rng, self.p
        hopeless = self.last_reason in ("student_or_job_seeker", "competitor", "duplicate", "invalid_contact")
        if rng.random() >= (0.04 if hopeless else 0.2 + 0.3 * p):
            return False
        at = self._later(self.cursor, rng.uniform(45, 200))
        if at > self.now:
            return False
        roll = rng.random()
        if roll < 0.5:
            request, actor = TransitionRequest("reopen", reason="recheck_due"), self.team.system
        elif roll < 0.75:
            note = "New funding round and a new logistics lead; worth another look."
            request, actor = TransitionRequest("reopen", reason="fit_changed", note=note), self.team.marketing
        else:
            self._add([DemoActivity("form_submit", at, "organic_search", None, None, {"form": "Contact us"})])
            request, actor = TransitionRequest("reopen", reason="resurfaced"), self.team.system
            at += timedelta(minutes=rng.randint(1, 20))
        if not self._step(request, actor, at):
            return False
        self._add(self.draw.burst(at, self._engagement_count(2.0, 12.0), 6.0))
        return True


def simulate_journey(
    rng: random.Random, world: World, person: Person, team: Team, *, volume: float = 1.0
) -> Journey:
    """One person's whole story until ``world.now``; ``volume`` scales how many activities they have."""
    return _Story(rng, world, person, team, volume).run()


def scattered_activities(
    rng: random.Random, world: World, person: Person, count: int
) -> Iterator[DemoActivity]:
    """``count`` more marketing activities for a person, spread over their life (unsorted)."""
    return _Activities(rng, world, person).scattered(count)


# ---- the database ------------------------------------------------------------------------------------


def _ensure_team(uow: UnitOfWork, at: datetime) -> Team:
    ids: dict[str, int] = {}
    for member in DEMO_TEAM:
        user = uow.users.get_by_username(member.username)
        if user is None:
            user = add_user(
                uow,
                username=member.username,
                role=member.role.value,
                team=member.team,
                password_hash=None,
                at=at,
            )
        ids[member.username] = user.id
    return team_from_ids(ids)


@dataclass
class _Counts:
    accounts: int = 0
    leads: int = 0
    activities: int = 0
    transitions: int = 0
    bant_records: int = 0
    mqls: int = 0
    sqls: int = 0
    opportunities: int = 0
    customers: int = 0
    evangelists: int = 0
    disqualified: int = 0
    skipped_existing: int = 0


def generate_demo(
    *,
    uow_factory: UnitOfWorkFactory,
    normalizer: IdentityNormalizer,
    leads: int,
    seed: int,
    now: datetime,
    progress: Progress | None = None,
    chunk: int = 1_000,
) -> dict[str, Any]:
    """Fill the database with the demo company: its team, accounts, leads, activities and history.

    Deterministic for a seed and ``now``. Leads whose email is already stored are skipped (their
    accounts are reused), so running it twice adds nothing twice. Commits every ``chunk`` leads.
    """
    if leads < 0:
        raise ValueError("leads must not be negative")
    progress = progress or NullProgress()
    world = World.build(now)
    people_rng, story_rng = demo_randoms(seed)
    counts = _Counts()
    with uow_factory() as uow:
        team = _ensure_team(uow, world.now)
        uow.properties.save_definitions("lead", LEAD_PROPERTY_TYPES, at=world.now)
        uow.commit()
        pending: list[tuple[Person, Journey]] = []
        done = 0
        for person in iter_people(people_rng, world, leads, times=story_rng):
            # Flush between companies, so each account is stored with all of its people at hand.
            if len(pending) >= chunk and (
                person.company is None or person.company is not pending[-1][0].company
            ):
                _store(uow, pending, normalizer, seed, counts)
                uow.commit()
                done += len(pending)
                pending = []
                progress.advance(rows=done, bytes_read=done)
            pending.append((person, simulate_journey(story_rng, world, person, team)))
        if pending:
            _store(uow, pending, normalizer, seed, counts)
            uow.commit()
            done += len(pending)
            progress.advance(rows=done, bytes_read=done)
    report: dict[str, Any] = {
        "accounts": counts.accounts,
        "leads": counts.leads,
        "activities": counts.activities,
        "transitions": counts.transitions,
        "users": team.size,
        "mqls": counts.mqls,
        "sqls": counts.sqls,
        "opportunities": counts.opportunities,
        "customers": counts.customers,
        "evangelists": counts.evangelists,
        "disqualified": counts.disqualified,
        "bant_records": counts.bant_records,
    }
    if counts.skipped_existing:
        report["skipped_existing"] = counts.skipped_existing
    return report


def _store(
    uow: UnitOfWork,
    batch: Sequence[tuple[Person, Journey]],
    normalizer: IdentityNormalizer,
    seed: int,
    counts: _Counts,
) -> None:
    identities = [person.identity(normalizer) for person, _j in batch]
    existing = uow.bulk.lead_ids_by_email(i.email_normalized for i in identities if i.email_normalized)
    first_seen: dict[str, datetime] = {}
    for person, _j in batch:
        if person.company is not None:
            domain = person.company.domain
            first_seen[domain] = min(first_seen.get(domain, person.created_at), person.created_at)
    account_ids: dict[str, int] = {}
    activity_rows: list[ActivityRow] = []
    history_rows: list[tuple[int, HistoryEntry]] = []
    for (person, journey), identity in zip(batch, identities, strict=True):
        if identity.email_normalized in existing:
            counts.skipped_existing += 1
            continue
        account_id = None
        company = person.company
        if company is not None:
            account_id = account_ids.get(company.domain)
            if account_id is None:
                found = uow.accounts.find_by_domain(company.domain)
                if found is not None and found.id is not None:
                    account_id = found.id
                else:
                    account_id = uow.accounts.add(company.account(), at=first_seen[company.domain])
                    counts.accounts += 1
                account_ids[company.domain] = account_id
        acts = journey.activities
        sourced = [a for a in acts if a.source]
        lead = Lead(
            id=None,
            identity=identity,
            state=journey.state,
            created_at=person.created_at,
            updated_at=max(journey.updated_at, person.created_at),
            properties=person.properties(),
            account_id=account_id,
            owner_id=journey.state.owner_id,
            first_source=person.source,
            latest_source=sourced[-1].source if sourced else person.source,
            first_touch_at=acts[0].at if acts else person.created_at,
            last_touch_at=acts[-1].at if acts else person.created_at,
        )
        lead_id = uow.leads.add(lead)
        counts.leads += 1
        activity_rows.extend(
            (
                lead_id,
                a.type,
                utc_text(a.at),
                f"demo:{seed}:{person.index}:{n}",
                a.source,
                a.campaign,
                a.content,
                a.properties_json(),
            )
            for n, a in enumerate(acts)
        )
        history_rows.extend((lead_id, entry) for entry in journey.history)
        counts.transitions += len(journey.history) - 1
        for answer in journey.bant:
            uow.qualifications.record(
                lead_id,
                cycle=answer.cycle,
                framework="bant",
                criterion=answer.criterion,
                confirmed=answer.confirmed,
                value=answer.value,
                evidence=answer.evidence,
                recorded_by=answer.recorded_by,
                at=answer.at,
            )
        counts.bant_records += len(journey.bant)
        furthest = journey.state.furthest_stage.rank
        counts.mqls += furthest >= Stage.MQL.rank
        counts.sqls += furthest >= Stage.SQL.rank
        counts.opportunities += furthest >= Stage.OPPORTUNITY.rank
        counts.customers += furthest >= Stage.CUSTOMER.rank
        counts.evangelists += journey.state.stage is Stage.EVANGELIST
        counts.disqualified += journey.state.status is Status.DISQUALIFIED
    counts.activities += uow.bulk.insert_activities(activity_rows)
    uow.bulk.insert_history(history_rows)


__all__ = [
    "ACTIVITY_CSV_COLUMNS",
    "DEMO_TEAM",
    "EBOOKS",
    "LEAD_CSV_COLUMNS",
    "LEAD_PROPERTY_TYPES",
    "WEBINARS",
    "DemoActivity",
    "Journey",
    "Person",
    "Team",
    "World",
    "activity_csv_row",
    "demo_randoms",
    "generate_demo",
    "iter_people",
    "lead_csv_row",
    "offline_team",
    "scattered_activities",
    "simulate_journey",
]
