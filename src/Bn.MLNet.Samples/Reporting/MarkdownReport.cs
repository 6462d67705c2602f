using System.Globalization;
using System.Text;

namespace Bn.MLNet.Samples.Reporting;

/// <summary>Builds an experiment's report.md: a title, a claims table, free sections, and links to plots.</summary>
public sealed class MarkdownReport
{
    private readonly StringBuilder _body = new();
    private readonly List<(string Claim, string Measured, string Verdict)> _claims = new();
    private readonly string _title;

    /// <summary>Starts a report with a title.</summary>
    public MarkdownReport(string title) => _title = title;

    /// <summary>Adds a row to the claims table: the paper's claim, our number, and whether it reproduced.</summary>
    public void Claim(string claim, string measured, bool? reproduced) =>
        _claims.Add((claim, measured, reproduced switch { true => "reproduced", false => "not reproduced", null => "inconclusive" }));

    /// <summary>Adds a row to the claims table with a verdict in words, e.g. "partly reproduced".</summary>
    public void Claim(string claim, string measured, string verdict) => _claims.Add((claim, measured, verdict));

    /// <summary>Adds a paragraph.</summary>
    public void Paragraph(string text) => _body.AppendLine(text).AppendLine();

    /// <summary>Adds a section heading.</summary>
    public void Heading(string text) => _body.AppendLine("## " + text).AppendLine();

    /// <summary>Adds an image link to a PNG in the report's folder.</summary>
    public void Image(string fileName, string alt) => _body.AppendLine($"![{alt}]({fileName})").AppendLine();

    /// <summary>Adds a table.</summary>
    public void Table(string[] header, IEnumerable<object?[]> rows)
    {
        _body.AppendLine("| " + string.Join(" | ", header) + " |");
        _body.AppendLine("|" + string.Concat(Enumerable.Repeat(" --- |", header.Length)));
        foreach (var row in rows)
        {
            _body.AppendLine("| " + string.Join(" | ", row.Select(Cell)) + " |");
        }

        _body.AppendLine();
    }

    /// <summary>Writes the report to <paramref name="path"/>.</summary>
    public void Save(string path)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# " + _title).AppendLine();
        if (_claims.Count > 0)
        {
            sb.AppendLine("| claim (paper) | measured here | verdict |");
            sb.AppendLine("| --- | --- | --- |");
            foreach (var (claim, measured, verdict) in _claims)
            {
                sb.AppendLine($"| {claim} | {measured} | {verdict} |");
            }

            sb.AppendLine();
        }

        sb.Append(_body);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, sb.ToString());
    }

    /// <summary>Formats a table cell: doubles with 4 significant decimals, null as a dash.</summary>
    public static string Cell(object? value) => value switch
    {
        null => "–",
        double d when double.IsNaN(d) => "–",
        double d => d.ToString("0.####", CultureInfo.InvariantCulture),
        float f => f.ToString("0.####", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
