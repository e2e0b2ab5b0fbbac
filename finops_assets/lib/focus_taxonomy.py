"""FOCUS 1.2 ServiceSubcategory and UnitFormat for the native sources, as SQL expressions.

ServiceSubcategory (FOCUS 1.1+, MUST NOT be null) is one of a fixed list of values, each with
exactly one parent ServiceCategory. Native exports have no such column: we derive it from the
service (lower-case ServiceName or AWS product code) and fall back to ``Other (<category>)``, so a
row's subcategory always belongs to its category whatever the lookup says.

PricingUnit and ConsumedUnit SHOULD follow FOCUS UnitFormat (``Hours``, ``GB-Months``,
``Requests``, ``GiB``...). Providers write their own spellings (AWS ``Hrs``/``GB-Mo``, GCP
``gibibyte month``); the common ones are rewritten, anything unknown passes through unchanged
(the raw tables keep the provider's spelling).
"""

from finops_assets.lib.loading import sql_literal

# FOCUS 1.2 ServiceCategory -> its allowed ServiceSubcategory values.
SERVICE_SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "AI and Machine Learning": (
        "AI Platforms",
        "Bots",
        "Generative AI",
        "Machine Learning",
        "Natural Language Processing",
    ),
    "Analytics": (
        "Analytics Platforms",
        "Business Intelligence",
        "Data Processing",
        "Search",
        "Streaming Analytics",
    ),
    "Business Applications": ("Productivity and Collaboration",),
    "Compute": (
        "Containers",
        "End User Computing",
        "Quantum Compute",
        "Serverless Compute",
        "Virtual Machines",
    ),
    "Databases": (
        "Caching",
        "Data Warehouses",
        "Ledger Databases",
        "NoSQL Databases",
        "Relational Databases",
        "Time Series Databases",
    ),
    "Developer Tools": (
        "Developer Platforms",
        "Continuous Integration and Deployment",
        "Development Environments",
        "Source Code Management",
        "Quality Assurance",
    ),
    "Identity": ("Identity and Access Management",),
    "Integration": ("API Management", "Messaging", "Workflow Orchestration"),
    "Internet of Things": ("IoT Analytics", "IoT Platforms"),
    "Management and Governance": (
        "Architecture",
        "Compliance",
        "Cost Management",
        "Data Governance",
        "Disaster Recovery",
        "Endpoint Management",
        "Observability",
        "Support",
    ),
    "Media": ("Content Creation", "Gaming", "Media Streaming", "Mixed Reality"),
    "Migration": ("Data Migration", "Resource Migration"),
    "Mobile": (),
    "Multicloud": ("Multicloud Integration",),
    "Networking": (
        "Application Networking",
        "Content Delivery",
        "Network Connectivity",
        "Network Infrastructure",
        "Network Routing",
        "Network Security",
    ),
    "Security": (
        "Secret Management",
        "Security Posture Management",
        "Threat Detection and Response",
    ),
    "Storage": (
        "Backup Storage",
        "Block Storage",
        "File Storage",
        "Object Storage",
        "Storage Platforms",
    ),
    "Web": ("Application Platforms",),
    "Other": (),
}

# Service (AWS product code or ServiceName, compared lower-case) -> subcategory candidate. It is
# used only when it belongs to the row's ServiceCategory.
_SUBCATEGORY_BY_SERVICE: dict[str, str] = {
    # AWS product codes
    **dict.fromkeys(
        ("amazonec2", "amazonlightsail", "awsoutposts", "amazonec2capacityblocks"),
        "Virtual Machines",
    ),
    "awslambda": "Serverless Compute",
    **dict.fromkeys(("amazonecs", "amazoneks", "awsbatch"), "Containers"),
    **dict.fromkeys(("amazonworkspaces", "amazonappstream"), "End User Computing"),
    **dict.fromkeys(("amazons3", "amazons3tables"), "Object Storage"),
    **dict.fromkeys(("amazonglacier", "amazons3glacierdeeparchive", "awsbackup"), "Backup Storage"),
    **dict.fromkeys(("amazonefs", "amazonfsx"), "File Storage"),
    "awsstoragegateway": "Storage Platforms",
    "amazonrds": "Relational Databases",
    **dict.fromkeys(
        ("amazondynamodb", "amazondocdb", "amazonneptune", "amazonmcs", "amazonkeyspaces"),
        "NoSQL Databases",
    ),
    **dict.fromkeys(("amazonelasticache", "amazonmemorydb", "amazondax"), "Caching"),
    "amazontimestream": "Time Series Databases",
    "amazonqldb": "Ledger Databases",
    **dict.fromkeys(
        ("awsdatatransfer", "awsdirectconnect", "awsprivatelink"), "Network Connectivity"
    ),
    **dict.fromkeys(("amazonvpc", "amazonvpclattice"), "Network Infrastructure"),
    **dict.fromkeys(("amazoncloudfront", "awsglobalaccelerator"), "Content Delivery"),
    **dict.fromkeys(("amazonroute53", "awscloudmap"), "Network Routing"),
    "awself": "Application Networking",
    **dict.fromkeys(
        (
            "amazonsqs",
            "awsqueueservice",
            "amazonsns",
            "awsevents",
            "amazoneventbridge",
            "amazonmq",
        ),
        "Messaging",
    ),
    **dict.fromkeys(("amazonstates", "awsstepfunctions"), "Workflow Orchestration"),
    **dict.fromkeys(
        (
            "amazoncloudwatch",
            "awsxray",
            "amazonmanagedgrafana",
            "amazonprometheus",
        ),
        "Observability",
    ),
    **dict.fromkeys(("awscloudtrail", "awsconfig", "awscontroltower"), "Compliance"),
    **dict.fromkeys(("awscostexplorer", "awsbudgets"), "Cost Management"),
    **dict.fromkeys(
        (
            "awssupportbusiness",
            "awssupportenterprise",
            "awssupportdeveloper",
            "awsdevelopersupport",
            "ocbpremiumsupport",
        ),
        "Support",
    ),
    **dict.fromkeys(("awscloudformation", "awsservicecatalog"), "Architecture"),
    **dict.fromkeys(
        ("awskms", "awssecretsmanager", "awscertificatemanager", "awscloudhsm"),
        "Secret Management",
    ),
    **dict.fromkeys(
        (
            "amazonguardduty",
            "amazoninspector",
            "amazoninspectorv2",
            "amazonmacie",
            "amazondetective",
        ),
        "Threat Detection and Response",
    ),
    "awssecurityhub": "Security Posture Management",
    **dict.fromkeys(
        ("awsdirectoryservice", "amazoncognito", "awssso", "awsidentitycenter"),
        "Identity and Access Management",
    ),
    **dict.fromkeys(
        ("amazonkinesis", "amazonkinesisfirehose", "amazonkinesisanalytics", "amazonmsk"),
        "Streaming Analytics",
    ),
    **dict.fromkeys(("amazonathena", "awsglue", "elasticmapreduce"), "Data Processing"),
    **dict.fromkeys(("amazones", "amazonopensearchservice", "amazonkendra"), "Search"),
    "amazonquicksight": "Business Intelligence",
    "amazonredshift": "Analytics Platforms",
    **dict.fromkeys(
        ("amazonsagemaker", "amazonrekognition", "amazonpersonalize", "amazonforecast"),
        "Machine Learning",
    ),
    **dict.fromkeys(("amazonbedrock", "amazonq"), "Generative AI"),
    **dict.fromkeys(
        ("amazoncomprehend", "amazontextract", "amazontranslate", "amazonpolly", "transcribe"),
        "Natural Language Processing",
    ),
    "amazonlex": "Bots",
    "awscodecommit": "Source Code Management",
    **dict.fromkeys(
        ("codebuild", "awscodebuild", "awscodepipeline", "awscodedeploy"),
        "Continuous Integration and Deployment",
    ),
    "awscloud9": "Development Environments",
    **dict.fromkeys(
        ("amazonecr", "amazonecrpublic", "awscodeartifact", "awscodestar"), "Developer Platforms"
    ),
    "amazoncodeguru": "Quality Assurance",
    "awsiotanalytics": "IoT Analytics",
    **dict.fromkeys(("awsiot", "awsgreengrass", "awsiotsitewise"), "IoT Platforms"),
    **dict.fromkeys(("amazonelastictranscoder", "awselementalmediaconvert"), "Content Creation"),
    **dict.fromkeys(
        (
            "awselementalmedialive",
            "awselementalmediapackage",
            "amazonivs",
            "amazonkinesisvideo",
        ),
        "Media Streaming",
    ),
    **dict.fromkeys(
        ("awsdatabasemigrationsvc", "awsdatasync", "awstransfer", "awssnowball"), "Data Migration"
    ),
    **dict.fromkeys(
        ("awsapplicationmigrationsvc", "awsmigrationhub", "awsmigrationhubrefactorspaces"),
        "Resource Migration",
    ),
    **dict.fromkeys(("awsamplify",), "Application Platforms"),
    **dict.fromkeys(
        ("amazonchime", "amazonworkmail", "amazonworkdocs", "amazonconnect"),
        "Productivity and Collaboration",
    ),
    # Azure MeterCategory / GCP service.description (ServiceName)
    **dict.fromkeys(
        ("virtual machines", "virtual machines licenses", "compute engine", "vmware engine"),
        "Virtual Machines",
    ),
    **dict.fromkeys(
        ("functions", "cloud functions", "cloud run", "azure container apps"),
        "Serverless Compute",
    ),
    **dict.fromkeys(
        ("azure kubernetes service", "kubernetes engine", "container instances"), "Containers"
    ),
    **dict.fromkeys(("azure app service", "app engine", "cloud services"), "Application Platforms"),
    **dict.fromkeys(("storage", "data box"), "Storage Platforms"),
    "cloud storage": "Object Storage",
    **dict.fromkeys(("backup", "backup and dr service"), "Backup Storage"),
    **dict.fromkeys(("azure netapp files", "filestore"), "File Storage"),
    "persistent disk": "Block Storage",
    **dict.fromkeys(
        (
            "sql database",
            "sql managed instance",
            "azure database for postgresql",
            "azure database for mysql",
            "cloud sql",
            "cloud spanner",
            "alloydb",
        ),
        "Relational Databases",
    ),
    **dict.fromkeys(
        ("azure cosmos db", "cloud bigtable", "cloud firestore", "firestore", "datastore"),
        "NoSQL Databases",
    ),
    **dict.fromkeys(
        ("redis cache", "cloud memorystore for redis", "memorystore for redis"), "Caching"
    ),
    **dict.fromkeys(
        (
            "bandwidth",
            "vpn gateway",
            "expressroute",
            "cloud interconnect",
            "cloud vpn",
            "cloud nat",
            "nat gateway",
            "networking",
        ),
        "Network Connectivity",
    ),
    **dict.fromkeys(
        ("virtual network", "ip addresses", "network watcher"), "Network Infrastructure"
    ),
    **dict.fromkeys(
        ("load balancer", "application gateway", "cloud load balancing"), "Application Networking"
    ),
    **dict.fromkeys(("azure dns", "cloud dns"), "Network Routing"),
    **dict.fromkeys(
        ("azure front door service", "content delivery network", "cloud cdn"), "Content Delivery"
    ),
    "azure firewall": "Network Security",
    **dict.fromkeys(("event hubs", "service bus", "event grid"), "Messaging"),
    "logic apps": "Workflow Orchestration",
    "api management": "API Management",
    **dict.fromkeys(("bigquery", "looker"), "Analytics Platforms"),
    **dict.fromkeys(("dataflow", "dataproc", "cloud data fusion"), "Data Processing"),
    "cloud composer": "Workflow Orchestration",
}

# Provider unit spellings (exact, then lower-case) -> FOCUS UnitFormat.
_UNITS: dict[str, str] = {
    # AWS
    "Hrs": "Hours",
    "Hr": "Hours",
    "hrs": "Hours",
    "GB-Mo": "GB-Months",
    "GB-Month": "GB-Months",
    "GB-Hrs": "GB-Hours",
    "GB-Second": "GB-Seconds",
    "Lambda-GB-Second": "GB-Seconds",
    "vCPU-Hrs": "vCPU-Hours",
    "LCU-Hrs": "LCU-Hours",
    # GCP usage.pricing_unit
    "hour": "Hours",
    "second": "Seconds",
    "month": "Months",
    "byte": "B",
    "gibibyte": "GiB",
    "mebibyte": "MiB",
    "tebibyte": "TiB",
    "gibibyte month": "GiB-Months",
    "gibibyte hour": "GiB-Hours",
    "gibibyte second": "GiB-Seconds",
    "tebibyte month": "TiB-Months",
    "mebibyte second": "MiB-Seconds",
    "request": "Requests",
    "requests": "Requests",
    "count": "Count",
    # Azure UnitOfMeasure
    "1 Hour": "Hours",
    "1 GB": "GB",
    "1 GB/Month": "GB-Months",
    "1/Month": "Months",
    "1/Day": "Days",
    "1": "Units",
}
# Generic rules: AWS '<unit>-Hrs' / '<unit>-Mo' spellings, Azure block sizes.
_UNIT_SUFFIXES = (
    (r"-(Hrs|hrs|Hr|hr|hours)$", "-Hours"),
    (r"-(Mo|mo|month|Month)$", "-Months"),
    (r"-(Second|second|sec|Sec|secs|Secs)$", "-Seconds"),
    # Azure counts in blocks: '10K' is 10,000 units, '1M' a million, '100' a hundred.
    (r"^([0-9]+)K$", r"\1000 Units"),
    (r"^([0-9]+)M$", r"\1000000 Units"),
    (r"^([0-9]+)$", r"\1 Units"),
)


def allowed_subcategory_pairs() -> list[tuple[str, str]]:
    """(ServiceCategory, ServiceSubcategory) pairs FOCUS allows, including 'Other (<category>)'."""
    return [
        (category, value)
        for category, values in SERVICE_SUBCATEGORIES.items()
        for value in (*values, f"Other ({category})")
    ]


def service_subcategory_sql(category: str, candidate: str) -> str:
    """``candidate`` when it is an allowed subcategory of ``category``, else
    ``Other (<category>)`` (``Other (Other)`` when the category is empty)."""
    pairs = ", ".join(sql_literal(f"{c}|{v}") for c, v in allowed_subcategory_pairs())
    return (
        f"CASE WHEN ({category}) || '|' || ({candidate}) IN ({pairs}) THEN ({candidate}) "
        f"ELSE 'Other (' || coalesce(NULLIF({category}, ''), 'Other') || ')' END"
    )


def subcategory_candidate_sql(*service_keys: str) -> str:
    """The first of ``service_keys`` (expressions: AWS product code, ServiceName...) with a known
    subcategory, compared lower-case; NULL when none is known."""
    cases = " ".join(
        f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in _SUBCATEGORY_BY_SERVICE.items()
    )
    lookups = [f"CASE lower({key}) {cases} END" for key in service_keys]
    return lookups[0] if len(lookups) == 1 else f"coalesce({', '.join(lookups)})"


def focus_unit_sql(unit: str) -> str:
    """``unit`` in FOCUS UnitFormat where the provider spelling is known; else unchanged."""
    exact = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in _UNITS.items())
    rewritten = unit
    for pattern, replacement in _UNIT_SUFFIXES:
        rewritten = (
            f"regexp_replace({rewritten}, {sql_literal(pattern)}, {sql_literal(replacement)})"
        )
    return f"CASE {unit} {exact} ELSE {rewritten} END"
