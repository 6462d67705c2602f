using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Bn.MLNet.Samples.Commands;

/// <summary>Range rules for numeric options, with messages that name the option and the value.</summary>
internal static class OptionRules
{
    /// <summary>Refuses values below <paramref name="minimum"/>; a value that is not a number is left to the parser's own error.</summary>
    public static Option<T> AtLeast<T>(this Option<T> option, int minimum)
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count == 0 || !int.TryParse(result.Tokens[^1].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value))
            {
                return;
            }

            if (value < minimum)
            {
                result.AddError($"{option.Name} must be at least {minimum}; got {value}.");
            }
        });
        return option;
    }
}
