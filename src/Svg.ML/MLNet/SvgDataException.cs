namespace Svg.ML.MLNet;

/// <summary>
/// A row an Svg.ML transformer cannot use: a missing, zero-byte or corrupt image, a missing value, a vector of the
/// wrong size. Names the column and the row (0-based position in the transformer's input).
/// </summary>
public sealed class SvgDataException : InvalidOperationException
{
    /// <summary>The input column holding the bad value.</summary>
    public string ColumnName { get; }

    /// <summary>0-based row position in the transformer's input data (or the prediction count for a PredictionEngine).</summary>
    public long Row { get; }

    /// <summary>What is wrong with the value.</summary>
    public string Reason { get; }

    public SvgDataException(string columnName, long row, string reason, Exception? inner = null)
        : base($"Column '{columnName}', row {row}: {reason}", inner)
    {
        ColumnName = columnName; Row = row; Reason = reason;
    }
}

/// <summary>A row an Svg.ML featurizer skipped (its <c>SkipBadRows</c> option).</summary>
/// <param name="Row">0-based row position in the transformer's input.</param>
/// <param name="ColumnName">The column holding the bad value.</param>
/// <param name="Reason">What is wrong with it.</param>
public sealed record SvgSkippedRow(long Row, string ColumnName, string Reason);

/// <summary>Thrown by a kernel while staging a row: the base adds the row number.</summary>
internal sealed class BadValueException : Exception
{
    public string ColumnName { get; }
    public BadValueException(string columnName, string reason, Exception? inner = null) : base(reason, inner) => ColumnName = columnName;
}

/// <summary>Schema errors that name the column.</summary>
internal static class SchemaErrors
{
    public static ArgumentException Missing(string role, string column) =>
        new($"The input has no column '{column}' ({role}).", "inputSchema");

    public static ArgumentException WrongType(string role, string column, string expected, object actual) =>
        new($"Column '{column}' ({role}) has type {actual}; expected {expected}.", "inputSchema");
}
