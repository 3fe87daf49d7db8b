package analysislite;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.en.EnglishMinimalStemFilter;
import org.apache.lucene.analysis.en.EnglishPossessiveFilter;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.tartarus.snowball.ext.EnglishStemmer;

import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.UnaryOperator;

/**
 * The {@code stemmer} token filter with the English values of analysis-common's {@code language}
 * setting (alias {@code name}, default {@code porter}). Any other language fails the index creation
 * with a message that lists the supported ones, instead of silently not stemming.
 */
final class StemmerTokenFilterFactory extends AbstractTokenFilterFactory {
    private static final Map<String, UnaryOperator<TokenStream>> LANGUAGES = Map.of(
        "english", PorterStemFilter::new,
        "porter", PorterStemFilter::new,
        "light_english", KStemFilter::new,
        "kstem", KStemFilter::new,
        "minimal_english", EnglishMinimalStemFilter::new,
        "possessive_english", EnglishPossessiveFilter::new,
        "porter2", tokenStream -> new SnowballFilter(tokenStream, new EnglishStemmer())
    );

    private final UnaryOperator<TokenStream> filter;

    StemmerTokenFilterFactory(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        super(name, settings);
        String language = settings.get("language", settings.get("name", "porter")).toLowerCase(Locale.ROOT);
        this.filter = LANGUAGES.get(language);
        if (filter == null) {
            throw new IllegalArgumentException(
                "stemmer [" + name + "]: unsupported language [" + language + "]; the analysis-lite plugin supports "
                    + new TreeSet<>(LANGUAGES.keySet())
            );
        }
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return filter.apply(tokenStream);
    }
}
