namespace Bn.MLNet.Samples.Reporting;

/// <summary>One named curve of a line plot.</summary>
/// <param name="Name">Legend text.</param>
/// <param name="Points">Points in x order.</param>
public sealed record Curve(string Name, IReadOnlyList<(double X, double Y)> Points);
