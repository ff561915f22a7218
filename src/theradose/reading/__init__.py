"""PET reading for patient selection and response assessment.

Modules
-------
suv
    SUVbw and SUL scale factors from PET DICOM headers (QIBA vendor-neutral timing).
lesions
    The lesion table (CSV) that the frameworks and response criteria read.
measure
    SUVmax, SUVpeak, SUVmean, tumour volume and total lesion uptake from a PET volume and masks.
criteria
    PSMA-RADS 1.0, SSTR-RADS 1.0, Krenning score, PROMISE V2 miPSMA score, and VISION, TheraP and
    NETTER-1 PET eligibility, each rule table shipped as cited, versioned data.
response
    RECIST 1.1, PERCIST 1.0, RECIP 1.0 and PSMA PET progression (PPP) between two lesion tables.
report
    JSON and Markdown summaries for the pipeline report.
"""
