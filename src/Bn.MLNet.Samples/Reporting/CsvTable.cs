using System.Globalization;
using System.Text;

namespace Bn.MLNet.Samples.Reporting;

/// <summary>A small CSV writer: a header and rows of invariant-culture values.</summary>
public sealed class CsvTable
{
    private readonly string[] _header;
    private readonly List<string[]> _rows = new();

    /// <summary>Creates a table with the given column names.</summary>
    public CsvTable(params string[] header) => _header = header;

    /// <summary>Adds one row; its length must equal the header's.</summary>
    public void Add(params object?[] values)
    {
        if (values.Length != _header.Length)
        {
            throw new ArgumentException($"A row of {values.Length} values does not fit a header of {_header.Length} columns.", nameof(values));
        }

        _rows.Add(values.Select(Format).ToArray());
    }

    /// <summary>Writes the table to <paramref name="path"/>.</summary>
    public void Save(string path)
    {
        var sb = new StringBuilder();
        sb.AppendLine(string.Join(',', _header.Select(Escape)));
        foreach (var row in _rows)
        {
            sb.AppendLine(string.Join(',', row.Select(Escape)));
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, sb.ToString());
    }

    private static string Format(object? value) => value switch
    {
        null => "",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string Escape(string s) =>
        s.IndexOfAny(new[] { ',', '"', '\n' }) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
}
