"""Every number of the synthetic-cohort generating model, in one frozen dataclass.

The simulator (:mod:`hte.data.simulate`) reads nothing else: no constant in its code is a
calibration choice. Named scenarios are overrides of the default (:func:`scenario_params`), each
changing one thing. The defaults are tuned so the default cohort reproduces the published figures in
``calibration_targets.yaml`` (``hte calibrate`` checks them); times are in months unless a name says
days, log-hazard and log-odds coefficients are additive on their scale.

Covariates enter the outcome and assignment models centred at fixed reference values, named in the
field names where they matter (``..._over_65``, ``..._per_10pct_over_30``, ``..._over_6``); log
ferritin and log CRP are taken relative to 350 ng/mL and 4 mg/L (the default medians).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# --------------------------------------------------------------------------------------------------
# Baseline covariates


@dataclass(frozen=True)
class CovariateParams:
    """Marginal distributions and correlations of the baseline covariates.

    Correlation comes from three latent standard-normal factors: tumor burden, inflammation (partly
    driven by burden) and frailty (partly driven by age and burden)."""

    age_mean: float = 66.0
    age_sd: float = 9.5
    age_min: float = 35.0
    age_max: float = 90.0
    male_prob: float = 0.56
    race_levels: tuple[str, ...] = ("white", "black", "asian", "other")
    race_probs: tuple[float, ...] = (0.70, 0.18, 0.05, 0.07)
    # inflammation = rho * burden + sqrt(1 - rho^2) * noise
    inflammation_on_burden: float = 0.5
    frailty_age_per_year: float = 0.035
    frailty_on_burden: float = 0.25
    # ECOG 0..4 as cut points on the frailty score (standardized); probabilities at mean frailty
    ecog_cum_probs: tuple[float, ...] = (0.27, 0.76, 0.952, 0.995)
    # ISS 1..3 from burden and renal function
    iss_cum_probs: tuple[float, ...] = (0.35, 0.73)
    iss_on_burden: float = 0.8
    iss_on_low_crcl: float = 0.6
    # creatinine clearance (mL/min): log-normal, falls with age and burden
    crcl_median_at_65: float = 80.0
    crcl_log_per_year: float = -0.016
    crcl_log_on_burden: float = -0.10
    crcl_log_sd: float = 0.28
    crcl_min: float = 10.0
    crcl_max: float = 200.0
    # bone-marrow plasma cells (%) = 100 * expit(a + b * burden + noise)
    bm_logit_intercept: float = -0.9
    bm_logit_on_burden: float = 1.1
    bm_logit_noise_sd: float = 0.35
    ldh_logit_intercept: float = -1.4
    ldh_logit_on_burden: float = 0.9
    # ferritin (ng/mL) and CRP (mg/L): log-normal on the inflammation factor
    ferritin_median: float = 350.0
    ferritin_log_sd: float = 0.8
    crp_median: float = 4.0
    crp_log_sd: float = 1.1
    crp_on_inflammation: float = 0.7
    high_risk_cyto_prob: float = 0.35
    gain_1q_logit_intercept: float = -0.45
    gain_1q_logit_on_high_risk: float = 0.8
    emd_logit_intercept: float = -1.35
    emd_logit_on_burden: float = 0.5
    emd_logit_on_high_risk: float = 0.3
    # prior lines = minimum + Poisson(mean)
    prior_lines_min: int = 3
    prior_lines_poisson_mean: float = 2.9
    years_dx_median_at_6_lines: float = 5.5
    years_dx_log_per_line: float = 0.10
    years_dx_log_sd: float = 0.45
    asct_logit_intercept: float = 1.8
    asct_logit_per_year_over_65: float = -0.10
    penta_logit_intercept: float = -0.35
    penta_logit_per_line_over_6: float = 0.3
    bcma_logit_intercept: float = -0.95
    bcma_logit_per_line_over_6: float = 0.15
    rapid_logit_intercept: float = -1.25
    rapid_logit_on_burden: float = 0.5
    rapid_logit_on_high_risk: float = 0.3


# --------------------------------------------------------------------------------------------------
# Treatment assignment


@dataclass(frozen=True)
class PropensityParams:
    """Logistic model of P(CAR-T | x): confounding by indication plus an access disparity.

    ``strength`` multiplies every covariate coefficient (not the intercept): 1 = default."""

    intercept: float = 0.62
    strength: float = 1.0
    age_per_year_over_66: float = -0.045
    ecog_ge2: float = -0.55
    crcl_lt60: float = -0.45
    ldh_high: float = -0.30
    bm_per_10pct_over_30: float = -0.06
    rapid_progression: float = -0.55
    prior_bcma: float = -1.45
    extramedullary: float = -0.40
    prior_asct: float = 0.30
    # social-risk proxy: documented access disparities; race has no effect on outcomes
    race_black: float = -0.50
    race_other: float = -0.20


# --------------------------------------------------------------------------------------------------
# Overall survival


@dataclass(frozen=True)
class SurvivalParams:
    """Hazards of death from the treatment decision (time zero), in months.

    A shared prognostic Weibull cumulative hazard ``Lambda0(t|x) = scale * exp(eta(x)) * t^shape``
    is multiplied by arm- and state-specific factors exp(beta(x)). CAR-T adds a waiting state
    (manufacturing delay D) with its own death hazard and a dropout hazard (never infused), then a
    post-infusion state with an extra early non-relapse mortality (NRM) hazard
    ``gamma(x) * exp(-(t - D) / nrm_decay_months)``."""

    weibull_shape: float = 1.0
    weibull_scale: float = 0.0056
    # prognostic linear predictor eta(x), shared by both arms
    prog_age_per_year_over_65: float = 0.012
    prog_ecog_per_level: float = 0.28
    prog_iss_per_stage_over_1: float = 0.18
    prog_high_risk_cyto: float = 0.30
    prog_gain_1q: float = 0.15
    prog_extramedullary: float = 0.30
    prog_penta_refractory: float = 0.20
    prog_ldh_high: float = 0.35
    prog_bm_per_10pct_over_30: float = 0.05
    prog_per_line_over_6: float = 0.04
    prog_rapid_progression: float = 0.40
    prog_prior_bcma: float = 0.20
    prog_crcl_lt60: float = 0.15
    prog_log_ferritin: float = 0.10
    # teclistamab: beta_tec(x) (the bispecific does markedly worse with EMD and after BCMA therapy)
    tec_extramedullary: float = 0.75
    tec_prior_bcma: float = 0.55
    # high burden hurts T-cell-engager response a bit (smooth bump above ~60% plasma cells)
    tec_high_bm: float = 0.20
    # CAR-T after infusion: beta_cart(x)
    cart_log_hr: float = -1.15
    cart_extramedullary: float = 0.25
    cart_prior_bcma: float = 0.35
    cart_low_crcl: float = 0.8  # times a smooth step down through crcl 60
    cart_rapid_progression: float = 0.35
    cart_high_risk_cyto: float = 0.20
    cart_age_over_70: float = 0.08  # weak, as the real-world series suggest
    crcl_threshold: float = 60.0
    crcl_step_width: float = 5.0
    bm_high_threshold: float = 60.0
    bm_step_width: float = 6.0
    # early NRM after infusion, CAR-HEMATOTOX idea: cumulative NRM ~ gamma * decay
    nrm_decay_months: float = 3.0
    nrm_base: float = 0.007  # per month: ~2% cumulative NRM
    nrm_high_ferritin: float = 0.035  # times a smooth step up through ferritin_threshold
    nrm_high_crp: float = 0.013  # times a smooth step up through crp_threshold
    nrm_age_over_70: float = 0.15  # relative increase, weak
    ferritin_threshold: float = 650.0
    ferritin_step_log_width: float = 0.25
    crp_threshold: float = 10.0
    crp_step_width: float = 3.0
    # waiting for CAR-T (bridging therapy): beta_wait(x) and dropout hazard nu(x) per month
    wait_log_hr: float = -0.5
    wait_rapid_progression: float = 1.0
    wait_bm_per_10pct_over_30: float = 0.10
    wait_extramedullary: float = 0.30
    wait_prior_bcma: float = 0.20
    dropout_rate: float = 0.030
    dropout_rapid_progression: float = 0.9  # log-rate increase
    dropout_bm_per_10pct_over_30: float = 0.08
    # after dropout (manufacturing failure / progression -> other salvage): beta_dropped(x)
    dropped_log_hr: float = 0.3
    # age-over-70 weak modifier ramp (years)
    age_ramp_start: float = 70.0
    age_ramp_width: float = 10.0


@dataclass(frozen=True)
class DelayParams:
    """Manufacturing delay D from decision to infusion: log-normal in days, truncated to a window.

    ``enabled=False`` means infusion at day 0 (no waiting, no dropout)."""

    enabled: bool = True
    median_days: float = 57.0
    log_sd: float = 0.33
    min_days: float = 21.0
    max_days: float = 150.0


# --------------------------------------------------------------------------------------------------
# CRS


@dataclass(frozen=True)
class CRSParams:
    """Cytokine release syndrome: any-grade risk (logistic) and ordinal grade given CRS.

    CAR-T CRS can only happen after infusion: P(CRS | x, cart) = P(infused | x) * P(CRS | x, infused).
    ``effect=False`` (null scenario, which infuses at day 0) gives CAR-T the teclistamab risk and
    grade model (P(CRS | x, infused) = P(CRS | x, tec) / P(infused | x)), so both arms carry the
    same risk for every patient."""

    effect: bool = True
    tec_intercept: float = 0.25
    tec_log_ferritin: float = 0.35
    tec_log_crp: float = 0.25
    cart_intercept: float = 1.7
    cart_log_ferritin: float = 0.40
    cart_log_crp: float = 0.25
    cart_bm_per_10pct_over_30: float = 0.30  # tumor burden: CAR-T only
    # ordinal grade: P(grade >= j | CRS) = expit(theta_j + severity(x)), j = 2..5
    tec_grade_thresholds: tuple[float, ...] = (-0.9, -3.7, -5.5, -7.2)
    cart_grade_thresholds: tuple[float, ...] = (-0.5, -3.25, -4.8, -6.2)
    tec_severity_log_ferritin: float = 0.30
    tec_severity_log_crp: float = 0.25
    cart_severity_log_ferritin: float = 0.40
    cart_severity_log_crp: float = 0.30
    cart_severity_bm_per_10pct_over_30: float = 0.15


# --------------------------------------------------------------------------------------------------
# Censoring


@dataclass(frozen=True)
class CensoringParams:
    """Staggered entry (uniform over the accrual window), a data cut, and random loss to follow-up.

    Nobody is lost before ``ltfu_start_months`` (patients are followed closely at the centre through
    manufacturing and infusion), and the data cut leaves at least that much follow-up, so an
    infusion is always observed when it happens."""

    accrual_months: float = 24.0
    data_cut_months: float = 36.0
    ltfu_rate_per_month: float = 0.008
    ltfu_start_months: float = 5.0


# --------------------------------------------------------------------------------------------------
# Truth computation


@dataclass(frozen=True)
class TruthParams:
    """Horizons of the true effects and the quadrature used to compute them exactly."""

    surv_horizon_months: float = 12.0
    rmst_horizon_months: float = 24.0
    # Gauss-Legendre nodes: over the delay window, and over time for the RMST
    delay_nodes: int = 20
    dropout_nodes: int = 12
    time_nodes_per_piece: int = 12
    # the marginal hazard ratio truth censors the potential outcomes here
    hr_horizon_months: float = 24.0


@dataclass(frozen=True)
class SimulationParams:
    """The whole generating model; one instance per scenario."""

    covariates: CovariateParams = field(default_factory=CovariateParams)
    propensity: PropensityParams = field(default_factory=PropensityParams)
    survival: SurvivalParams = field(default_factory=SurvivalParams)
    delay: DelayParams = field(default_factory=DelayParams)
    crs: CRSParams = field(default_factory=CRSParams)
    censoring: CensoringParams = field(default_factory=CensoringParams)
    truth: TruthParams = field(default_factory=TruthParams)

    def __post_init__(self) -> None:
        min_follow = self.censoring.data_cut_months - self.censoring.accrual_months
        max_delay = self.delay.max_days / (365.25 / 12.0) if self.delay.enabled else 0.0
        if min_follow < max_delay or self.censoring.ltfu_start_months < max_delay:
            raise ValueError(
                "censoring: data_cut_months - accrual_months and ltfu_start_months must be at least "
                f"the longest manufacturing delay ({max_delay:.2f} months), so infusions are observed"
            )


def _null_survival(s: SurvivalParams) -> SurvivalParams:
    """Survival parameters with identical hazards under both arms (waiting included).

    The null scenario also infuses at day 0: the manufacturing wait is part of CAR-T's effect, and
    with a wait, CAR-T CRS (which needs an infusion) could not match teclistamab's risk for the
    patients likely to die waiting."""
    return replace(
        s,
        tec_high_bm=0.0,
        cart_log_hr=0.0,
        cart_extramedullary=s.tec_extramedullary,
        cart_prior_bcma=s.tec_prior_bcma,
        cart_low_crcl=0.0,
        cart_rapid_progression=0.0,
        cart_high_risk_cyto=0.0,
        cart_age_over_70=0.0,
        nrm_base=0.0,
        nrm_high_ferritin=0.0,
        nrm_high_crp=0.0,
        wait_log_hr=0.0,
        wait_rapid_progression=0.0,
        wait_bm_per_10pct_over_30=0.0,
        wait_extramedullary=s.tec_extramedullary,
        wait_prior_bcma=s.tec_prior_bcma,
        dropout_rate=0.0,
        dropout_rapid_progression=0.0,
        dropout_bm_per_10pct_over_30=0.0,
        dropped_log_hr=0.0,
    )


def scenario_params(name: str = "default") -> SimulationParams:
    """Parameters of a named scenario (see ``SCENARIO_DESCRIPTIONS``)."""
    if name not in SCENARIO_DESCRIPTIONS:
        raise ValueError(
            f"unknown scenario {name!r}; choose one of {', '.join(SCENARIO_DESCRIPTIONS)}"
        )
    return _SCENARIO_BUILDERS[name]()


SCENARIO_DESCRIPTIONS: dict[str, str] = {
    "default": "calibrated to the published figures (calibration_targets.yaml)",
    "null_effect": (
        "CAR-T and teclistamab have the same survival and CRS risk for every patient "
        "(infusion at day 0: waiting is part of CAR-T's effect)"
    ),
    "strong_confounding": "propensity coefficients x1.75: sicker patients go to teclistamab even more often",
    "poor_overlap": "propensity coefficients x3: many patients almost certain to get one arm",
    "heavy_censoring": "shorter data cut (30 months, accrual 24) and 5%/month loss to follow-up",
    "no_manufacturing_delay": "CAR-T infused at day 0: no waiting, no deaths or dropout before",
    "short_follow_up": (
        "as default, but accrual over 12 months and a data cut at 18 (6-18 months of follow-up, "
        "about one year), like the first real-world comparison (802MO)"
    ),
}

_SCENARIO_BUILDERS = {
    "default": SimulationParams,
    "null_effect": lambda: SimulationParams(
        survival=_null_survival(SurvivalParams()),
        delay=replace(DelayParams(), enabled=False),
        crs=replace(CRSParams(), effect=False),
    ),
    "strong_confounding": lambda: SimulationParams(
        propensity=replace(PropensityParams(), strength=1.75, intercept=1.05)
    ),
    "poor_overlap": lambda: SimulationParams(
        propensity=replace(PropensityParams(), strength=3.0, intercept=1.7)
    ),
    "heavy_censoring": lambda: SimulationParams(
        censoring=replace(CensoringParams(), data_cut_months=30.0, ltfu_rate_per_month=0.05)
    ),
    "no_manufacturing_delay": lambda: SimulationParams(delay=replace(DelayParams(), enabled=False)),
    "short_follow_up": lambda: SimulationParams(
        censoring=replace(CensoringParams(), accrual_months=12.0, data_cut_months=18.0)
    ),
}
