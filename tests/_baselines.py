"""Simple baselines that a learning test must beat, computed on its own rows.

A fixed AUC bound says little when one column alone reaches it; these give
the bar: the best single feature, and a logistic regression on one-hot
categories and scaled numbers.
"""

import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def _numeric_columns(X):
    return [
        c
        for c in X.columns
        if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
    ]


def _feature_score(train, y_train, test, numeric):
    """One column as a score: its value (sign chosen on train) or its category's rate."""
    if numeric:
        fill = train.median()
        sign = 1.0 if roc_auc_score(y_train, train.fillna(fill)) >= 0.5 else -1.0
        return sign * test.fillna(fill)
    rates = y_train.groupby(train.astype(str)).mean()
    return test.astype(str).map(rates).fillna(y_train.mean()).astype(float)


def best_single_feature_auc(X_train, y_train, X_test, y_test):
    """Return (column, test ROC AUC) of the best one-column score.

    Each column's direction or category rates are learnt on the training
    rows only, as a model would.
    """
    numeric = set(_numeric_columns(X_train))
    aucs = {
        c: roc_auc_score(
            y_test, _feature_score(X_train[c], y_train, X_test[c], c in numeric)
        )
        for c in X_train.columns
    }
    best = max(aucs, key=aucs.get)
    return best, aucs[best]


def logistic_regression_auc(X_train, y_train, X_test, y_test):
    """Test ROC AUC of a logistic regression on one-hot and scaled columns."""
    numeric = _numeric_columns(X_train)
    categorical = [c for c in X_train.columns if c not in numeric]
    model = make_pipeline(
        make_column_transformer(
            (
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
            (
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                numeric,
            ),
        ),
        LogisticRegression(max_iter=2000),
    )
    as_str = {c: X_train[c].astype(object) for c in categorical}
    model.fit(X_train.assign(**as_str), y_train)
    test = X_test.assign(**{c: X_test[c].astype(object) for c in categorical})
    return roc_auc_score(y_test, model.predict_proba(test)[:, 1])


def assert_beats_baselines(
    auc, X_train, y_train, X_test, y_test, *, margin, slack, label
):
    """Assert a model's test AUC clears both baselines on the same rows.

    Parameters
    ----------
    auc : float
        The model's test ROC AUC.
    margin : float
        How far above the best single feature it must be.
    slack : float
        How far below the logistic regression it may be.
    label : str
        Named in the failure message.
    """
    column, single = best_single_feature_auc(X_train, y_train, X_test, y_test)
    logistic = logistic_regression_auc(X_train, y_train, X_test, y_test)
    assert auc >= single + margin, (
        f"{label}: AUC {auc:.4f} is not {margin} above the best single feature "
        f"({column!r}: {single:.4f})"
    )
    assert auc >= logistic - slack, (
        f"{label}: AUC {auc:.4f} is more than {slack} below logistic regression "
        f"({logistic:.4f})"
    )
